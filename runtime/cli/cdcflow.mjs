#!/usr/bin/env node
// The `cdcflow` command. cdcflow ships TypeScript sources, so this launcher registers tsx's loader
// in this process and runs the CLI (runtime/cli/main.ts); jobs started by `cdcflow run` get the same loader.
import { register } from 'tsx/esm/api';

register();
await import('./main.ts');
