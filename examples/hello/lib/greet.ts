import { shout } from './format.js';

export interface Greeting {
  readonly text: string;
}

export function greet(name: string): string {
  const greeting: Greeting = { text: `hello, ${name}` };
  return shout(greeting.text);
}
