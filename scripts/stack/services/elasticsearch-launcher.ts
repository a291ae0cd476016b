/**
 * A ten-line Java main around codelibs' ElasticsearchClusterRunner, compiled once at install.
 *
 * Why not call the runner's own main: it refuses any HTTP port above 9299 (its free-port scan
 * stops at `maxHttpPort`, settable only from code), and it takes node settings only from code,
 * so loopback binding, the transport port and the disk watermarks could not be set from the
 * command line. This main switches the scan off and loads our settings file into every node.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../process.ts';

export const launcherClass = 'CdcflowElasticsearch';

/** `java … <launcherClass> <launcherArgs>`: our settings file first, then the runner's own options. */
export function launcherArgs(settingsFile: string, runnerOptions: Readonly<Record<string, string>>): string[] {
  return [settingsFile, ...Object.entries(runnerOptions).flatMap(([key, value]) => [`-${key}`, value])];
}

const source = `import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Arrays;
import org.codelibs.elasticsearch.runner.ElasticsearchClusterRunner;

/** args: settings.yml, then the runner's own options (-basePath, -numOfNode, ...). */
public final class ${launcherClass} {
  public static void main(String[] args) throws Exception {
    Path settings = Path.of(args[0]);
    ElasticsearchClusterRunner runner = new ElasticsearchClusterRunner();
    runner.setMaxHttpPort(-1);
    runner.onBuild((index, builder) -> {
      try {
        builder.loadFromPath(settings);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    });
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      try {
        runner.close();
      } catch (IOException e) {
        System.err.println("closing elasticsearch failed: " + e);
      }
    }));
    try {
      runner.build(Arrays.copyOfRange(args, 1, args.length));
    } catch (RuntimeException e) {
      e.printStackTrace();
      System.exit(1);
    }
    while (!runner.isClosed()) Thread.sleep(1000);
  }
}
`;

/**
 * Compiles the launcher into `<dir>/classes` against the resolved jars and returns that folder.
 * Idempotent: recompiles only when the source above changed since the last install.
 */
export async function ensureLauncher(dir: string, libDir: string): Promise<string> {
  const sourceFile = join(dir, `${launcherClass}.java`);
  const classes = join(dir, 'classes');
  const compiled = join(classes, `${launcherClass}.class`);
  if (existsSync(compiled) && existsSync(sourceFile) && readFileSync(sourceFile, 'utf8') === source) return classes;
  rmSync(classes, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(sourceFile, source);
  // --release 11 keeps the class loadable whichever JDK (11+) runs Elasticsearch later.
  await run('javac', ['--release', '11', '-cp', join(libDir, '*'), '-d', classes, sourceFile]).catch(
    (error: unknown) => {
      throw new Error(`compiling the Elasticsearch launcher needs a JDK (javac) on PATH: ${String(error)}`);
    },
  );
  return classes;
}
