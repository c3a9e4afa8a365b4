#!/usr/bin/env node
// The `livemod` command. The CLI is TypeScript run through Node's type stripping (Node >= 24).
import '../src/cli/main.ts';
