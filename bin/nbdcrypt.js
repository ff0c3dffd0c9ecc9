#!/usr/bin/env node
// Entry point installed as `nbdcrypt`; the CLI itself is compiled TypeScript.
import { main } from '../dist/src/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
