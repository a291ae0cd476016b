package cdcflow.peers.flink;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What every peer reports to the bench: arguments in, the span of the records' passage out. The
 * parent samples CPU and RSS from /proc; the job notes the first and the last record (epoch ms).
 */
final class Peer {
  static final AtomicLong FIRST = new AtomicLong();
  static final AtomicLong LAST = new AtomicLong();
  static final AtomicLong RECORDS = new AtomicLong();

  private Peer() {}

  static void mark() {
    long now = System.currentTimeMillis();
    FIRST.compareAndSet(0, now);
    LAST.set(now);
    RECORDS.incrementAndGet();
  }

  static Map<String, String> args(String[] argv) {
    Map<String, String> args = new HashMap<>();
    for (int i = 0; i + 1 < argv.length; i += 2) args.put(argv[i].replaceFirst("^--", ""), argv[i + 1]);
    return args;
  }

  /** One JSON line per subtask (a MiniCluster runs them all in this JVM; the bench sums them). */
  static synchronized void append(String file, String json) {
    try {
      Files.writeString(Path.of(file), json + "\n", StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  static void result(String extra) {
    System.out.println("RESULT {\"first\":" + FIRST.get() + ",\"last\":" + LAST.get() + ",\"records\":" + RECORDS.get() + extra + "}");
  }
}
