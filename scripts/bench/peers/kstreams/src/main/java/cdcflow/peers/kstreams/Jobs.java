package cdcflow.peers.kstreams;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;

/**
 * The reference jobs (WORKLOAD.md) on Kafka Streams 3.9, written as its users write them:
 * exactly_once_v2, RocksDB stores (changelogged), commit interval 1 s; the projection as a
 * processor over a key-value store, the revenue windows as a windowed aggregation. Kafka Streams
 * has no end of input: the job stops when it has seen the topic's message count.
 *   java -cp ... cdcflow.peers.kstreams.Jobs --job upsert|windows --lateness stream-time|per-partition
 *        --brokers B --topic T --group G --messages N --parallelism P --dir D --out F
 */
public final class Jobs {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final AtomicLong FIRST = new AtomicLong();
  private static final AtomicLong LAST = new AtomicLong();
  private static final AtomicLong SEEN = new AtomicLong();
  /** Revenue windows: records handed to the windowing stage, and records it got. */
  private static final AtomicLong FORWARDED = new AtomicLong();
  private static final AtomicLong ARRIVED = new AtomicLong();
  private static final CountDownLatch DONE = new CountDownLatch(1);
  private static long messages;

  private Jobs() {}

  public static void main(String[] argv) throws Exception {
    Map<String, String> args = new HashMap<>();
    for (int i = 0; i + 1 < argv.length; i += 2) args.put(argv[i].replaceFirst("^--", ""), argv[i + 1]);
    messages = Long.parseLong(args.get("messages"));
    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, args.get("group"));
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args.get("brokers"));
    props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
    props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 1000);
    props.put(StreamsConfig.STATE_DIR_CONFIG, args.get("dir"));
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Integer.parseInt(args.getOrDefault("parallelism", "1")));
    props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
    props.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
    StreamsBuilder builder = new StreamsBuilder();
    String out = args.get("out");
    boolean windows = "windows".equals(args.get("job"));
    Map<String, String> results = new ConcurrentHashMap<>();
    List<Change> late = java.util.Collections.synchronizedList(new ArrayList<>());
    if (windows) revenueWindows(builder, args.get("topic"), "per-partition".equals(args.get("lateness")), results, late);
    else projection(builder, args.get("topic"));
    KafkaStreams streams = new KafkaStreams(builder.build(), props);
    streams.setUncaughtExceptionHandler(e -> {
      e.printStackTrace();
      System.exit(3);
      return null;
    });
    streams.start();
    if (!DONE.await(Long.parseLong(args.getOrDefault("timeout-s", "1800")), TimeUnit.SECONDS)) throw new IllegalStateException("timed out after " + SEEN.get() + " of " + messages + " messages");
    streams.close(Duration.ofSeconds(60)); // commits the last transaction, flushing the window cache downstream
    StringBuilder lines = new StringBuilder();
    if (windows) {
      for (Change dropped : PENDING.values()) late.add(dropped);
      for (String row : results.values()) lines.append("{\"window\":").append(row).append("}\n");
      synchronized (late) {
        for (Change c : late) lines.append("{\"late\":{\"lsn\":").append(c.lsn).append(",\"id\":").append(c.id).append("}}\n");
      }
    } else {
      lines.append("{\"keys\":").append(LIVE_KEYS.get()).append(",\"amount\":\"").append(BigDecimal.valueOf(LIVE_CENTS.get(), 2).toPlainString()).append("\"}\n");
    }
    Files.writeString(Path.of(out), lines.toString(), StandardCharsets.UTF_8);
    System.out.println("RESULT {\"first\":" + FIRST.get() + ",\"last\":" + LAST.get() + ",\"records\":" + SEEN.get() + "}");
    System.exit(0);
  }

  private static void mark(long forwarded) {
    long now = System.currentTimeMillis();
    FIRST.compareAndSet(0, now);
    LAST.accumulateAndGet(now, Math::max);
    FORWARDED.addAndGet(forwarded);
    if (SEEN.incrementAndGet() >= messages) maybeDone();
  }

  private static void maybeDone() {
    if (SEEN.get() >= messages && ARRIVED.get() >= FORWARDED.get()) DONE.countDown();
  }

  // ------------------------------------------------------------------ job 1: the projection

  /** The latest row per key, guarded by commit order; null `after` once deleted. */
  public static class Row {
    public int tier;
    public long commitLsn;
    public long changeLsn;
    public String after;
    public long amountCents;
  }

  static final AtomicLong LIVE_KEYS = new AtomicLong();
  static final AtomicLong LIVE_CENTS = new AtomicLong();

  static void projection(StreamsBuilder builder, String topic) {
    builder.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore("latest"), Serdes.Bytes(), json(Row.class)));
    builder.stream(topic, Consumed.with(Serdes.Bytes(), Serdes.ByteArray())).process(Upsert::new, "latest");
  }

  static final class Upsert implements Processor<Bytes, byte[], Void, Void> {
    private KeyValueStore<Bytes, Row> latest;

    @Override
    public void init(ProcessorContext<Void, Void> context) {
      latest = context.getStateStore("latest");
    }

    @Override
    public void process(Record<Bytes, byte[]> record) {
      mark(0);
      if (record.value() == null) return; // a tombstone: the delete before it did the work
      Change c = parse(record.key().get(), record.value(), -1);
      Row previous = latest.get(record.key());
      if (previous != null && c.compareTo(previous.tier, previous.commitLsn, previous.changeLsn) <= 0) return;
      Row row = new Row();
      row.tier = c.tier;
      row.commitLsn = c.commitLsn;
      row.changeLsn = c.changeLsn;
      if (!"d".equals(c.op)) {
        row.after = c.after;
        row.amountCents = c.amount.movePointRight(2).longValueExact();
      }
      latest.put(record.key(), row);
      // For the bench's oracle check only: live rows and the sum of their amounts.
      if (previous != null && previous.after != null) {
        LIVE_KEYS.decrementAndGet();
        LIVE_CENTS.addAndGet(-previous.amountCents);
      }
      if (row.after != null) {
        LIVE_KEYS.incrementAndGet();
        LIVE_CENTS.addAndGet(row.amountCents);
      }
    }
  }

  // ------------------------------------------------------------------ job 2: revenue windows

  /** Sum and count, exact. */
  public static class Revenue {
    public BigDecimal sum = BigDecimal.ZERO;
    public long count;
  }

  /** Per stream thread: the record that reached the window operator and not yet its aggregator. */
  private static final Map<Long, Change> PENDING = new ConcurrentHashMap<>();

  /**
   * Kafka Streams has a grace period, not bounded out-of-orderness + allowed lateness: a window
   * closes when the task's stream time (the maximum record time it has seen, here after the
   * repartition by status, so over all source partitions) passes its end + grace. Grace 35 s is
   * 5 s out-of-orderness + 30 s allowed lateness. `per-partition` applies that rule per source
   * partition before the repartition (the job's own operator), then windows with a grace wide
   * enough not to drop anything more.
   */
  static void revenueWindows(StreamsBuilder builder, String topic, boolean perPartition, Map<String, String> results, List<Change> late) {
    KStream<Bytes, Change> orders = builder.stream(topic, Consumed.with(Serdes.Bytes(), Serdes.ByteArray()))
        .process(() -> new Processor<Bytes, byte[], Bytes, Change>() {
          private ProcessorContext<Bytes, Change> context;
          private long maxTs = Long.MIN_VALUE;

          @Override
          public void init(ProcessorContext<Bytes, Change> context) {
            this.context = context;
          }

          @Override
          public void process(Record<Bytes, byte[]> record) {
            if (record.value() == null) {
              mark(0);
              return;
            }
            Change c = parse(record.key().get(), record.value(), context.recordMetadata().map(m -> m.partition()).orElse(-1));
            boolean relevant = ("c".equals(c.op) || "u".equals(c.op) || "r".equals(c.op)) && c.after != null;
            boolean isLate = false;
            if (perPartition && relevant) {
              long windowEnd = c.tsMs - Math.floorMod(c.tsMs, 60_000L) + 60_000L;
              isLate = maxTs != Long.MIN_VALUE && windowEnd - 1 + 30_000 <= maxTs - 5_000 - 1;
            }
            maxTs = Math.max(maxTs, c.tsMs);
            if (isLate) late.add(c);
            mark(relevant && !isLate ? 1 : 0);
            if (!relevant || isLate) return;
            c.after = null; // the windows need status, amount and time only: a lighter repartition
            context.forward(record.withValue(c).withTimestamp(c.tsMs));
          }
        });
    Duration grace = perPartition ? Duration.ofDays(1) : Duration.ofSeconds(35);
    orders.selectKey((k, c) -> c.status)
        .repartition(Repartitioned.with(Serdes.String(), json(Change.class)).withName("by-status"))
        .peek((status, c) -> {
          // A record the window operator drops as late never reaches the aggregator.
          Change before = PENDING.put(Thread.currentThread().getId(), c);
          if (before != null) late.add(before);
          // The span ends when the window stage has had the last record, not when the source had it.
          LAST.accumulateAndGet(System.currentTimeMillis(), Math::max);
          ARRIVED.incrementAndGet();
          maybeDone();
        })
        .groupByKey()
        .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMinutes(1), grace))
        .aggregate(Revenue::new, (status, c, r) -> {
          PENDING.remove(Thread.currentThread().getId());
          r.sum = r.sum.add(c.amount);
          r.count += 1;
          return r;
        }, Materialized.with(Serdes.String(), json(Revenue.class)))
        .toStream()
        .foreach((w, r) -> results.put(w.window().start() + "|" + w.key(), "{\"windowStart\":" + w.window().start() + ",\"windowEnd\":" + w.window().end() + ",\"status\":\"" + w.key() + "\",\"sum\":\"" + r.sum.setScale(2).toPlainString() + "\",\"count\":" + r.count + "}"));
  }

  static Change parse(byte[] key, byte[] value, int partition) {
    try {
      return Change.parse(key, value, partition);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static <T> Serde<T> json(Class<T> type) {
    Deserializer<T> deserializer = (topic, bytes) -> {
      try {
        return bytes == null ? null : JSON.readValue(bytes, type);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    };
    return Serdes.serdeFrom((topic, value) -> {
      try {
        return value == null ? null : JSON.writeValueAsBytes(value);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }, deserializer);
  }
}
