/**
 * npm run stack -- up|down|status [service...]
 * Starts the real services cdcflow's tests and demo use, on 127.0.0.1, without Docker.
 */
import { allServices, selectServices } from './services/index.ts';
import { down, status, up } from './stack.ts';

const [command = 'status', ...names] = process.argv.slice(2);
const services = selectServices(names, command === 'up');
const log = (line: string) => console.log(line);

try {
  switch (command) {
    case 'up': {
      const started = Date.now();
      await up(services, log);
      log(`stack up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      break;
    }
    case 'down':
      await down(services, log);
      break;
    case 'status':
      process.exitCode = (await status(services, log)) ? 0 : 1;
      break;
    default:
      console.error(`usage: npm run stack -- up|down|status [${allServices.map((s) => s.name).join('|')}]`);
      process.exitCode = 2;
  }
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
}
