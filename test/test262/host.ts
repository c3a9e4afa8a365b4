// The host hooks test262's harness and tests expect (INTERPRETING.md, "Host-Defined
// Functions"): `print` and `$262`. `agent` and `IsHTMLDDA` are left out: no test here needs
// them, and a test that does should fail visibly rather than run against a stand-in.
import vm from 'node:vm';

export interface Test262Host {
  readonly global: object;
  evalScript(code: string): unknown;
  createRealm(): Test262Host;
  detachArrayBuffer(buffer: ArrayBuffer): null;
  readonly gc?: () => void;
  readonly AbstractModuleSource?: unknown;
}

type Print = (message: unknown) => void;

// Captured before any test runs: a test may replace the global.
const SafeString = String;

// V8 exposes %AbstractModuleSource% only as the prototype of WebAssembly.Module; found by shape, not by version.
const abstractModuleSource = ((): unknown => {
  // Not in the es2024 lib the project compiles against: reached through the global object.
  const wasm = (globalThis as { WebAssembly?: { Module: unknown } }).WebAssembly;
  const candidate: unknown = wasm ? Object.getPrototypeOf(wasm.Module) : undefined;
  return typeof candidate === 'function' && candidate.name === 'AbstractModuleSource' ? candidate : undefined;
})();

function hostFor(global: object, run: (code: string) => unknown, print: Print): Test262Host {
  const gc = (globalThis as { gc?: () => void }).gc;
  const host: Test262Host = {
    global,
    evalScript: run,
    createRealm() {
      const context = vm.createContext();
      const realmGlobal = vm.runInContext('globalThis', context) as Record<string, unknown>;
      const realm = hostFor(realmGlobal, (code) => vm.runInContext(code, context), print);
      install(realmGlobal, realm, print);
      return realm;
    },
    detachArrayBuffer(buffer) {
      // transfer() detaches its receiver; called through the prototype so a buffer from another realm works too.
      ArrayBuffer.prototype.transfer.call(buffer);
      return null;
    },
    ...(gc ? { gc } : {}),
    ...(abstractModuleSource ? { AbstractModuleSource: abstractModuleSource } : {}),
  };
  return host;
}

function install(global: Record<string, unknown>, host: Test262Host, print: Print): void {
  // Writable and configurable, as a script's own `var print` would find them.
  Object.defineProperty(global, 'print', { value: print, writable: true, configurable: true, enumerable: false });
  Object.defineProperty(global, '$262', { value: host, writable: true, configurable: true, enumerable: false });
}

/** Defines `print` and `$262` on this realm's global; `print` hands every message to `onPrint`. */
export function installHost(onPrint: (line: string) => void): Test262Host {
  const print: Print = (message) => onPrint(SafeString(message));
  const host = hostFor(globalThis, (code) => vm.runInThisContext(code), print);
  install(globalThis as unknown as Record<string, unknown>, host, print);
  return host;
}
