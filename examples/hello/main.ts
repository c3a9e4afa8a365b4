// The built-in example: `npm start` serves this folder; edit lib/greet.ts while it runs.
import { hostname } from 'node:os';
import { greet } from 'hello-livemod/greet';
import { counter, tick } from './lib/counter';

tick();
console.log(greet(hostname()), `(run ${counter})`);
