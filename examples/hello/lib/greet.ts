import { shout } from './format.js';

export interface Greeting {
  readonly text: string;
}

export function greet(name: string): string {
  const greeting: Greeting = { text: `hello, ${name}` };
  return shout(greeting.text);
}

// This module takes its new versions itself: importers call the new `greet` from the next tick on.
import.meta.hot?.accept();
