package cdcflow.peers.flink;

import java.math.BigDecimal;
import java.util.HashMap;
import java.util.Map;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.AggregateFunction;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.streaming.api.functions.windowing.ProcessWindowFunction;
import org.apache.flink.streaming.api.windowing.assigners.TumblingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;
import org.apache.kafka.clients.consumer.ConsumerRecord;

/**
 * The reference jobs (WORKLOAD.md) on Flink, written as its users write them: KafkaSource,
 * keyBy, a KeyedProcessFunction over RocksDB ValueState for the projection, and the window API
 * (bounded out-of-orderness, allowed lateness, late side output) for the revenue windows.
 *   java -cp ... cdcflow.peers.flink.Jobs --job upsert|windows --brokers B --topic T --group G
 *        --parallelism P --dir D --out F
 */
public final class Jobs {
  private Jobs() {}

  public static void main(String[] argv) throws Exception {
    Map<String, String> args = Peer.args(argv);
    String dir = args.get("dir");
    Map<String, String> conf = new HashMap<>();
    conf.put("state.backend.type", "rocksdb");
    conf.put("execution.checkpointing.incremental", "true");
    conf.put("execution.checkpointing.interval", "1s");
    conf.put("execution.checkpointing.mode", "EXACTLY_ONCE");
    conf.put("execution.checkpointing.dir", "file://" + dir + "/checkpoints");
    conf.put("state.backend.rocksdb.localdir", dir + "/rocksdb");
    // Flink leaves RocksDB bloom filters off; its users turn them on for point lookups like these.
    conf.put("state.backend.rocksdb.use-bloom-filter", "true");
    conf.put("restart-strategy.type", "none");
    StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(Configuration.fromMap(conf));
    env.setParallelism(Integer.parseInt(args.getOrDefault("parallelism", "1")));
    String job = args.get("job");
    String out = args.get("out");
    boolean windows = "windows".equals(job);
    KafkaSource<Change> source = KafkaSource.<Change>builder()
        .setBootstrapServers(args.get("brokers"))
        .setTopics(args.get("topic"))
        .setGroupId(args.get("group"))
        .setStartingOffsets(OffsetsInitializer.earliest())
        .setBounded(OffsetsInitializer.latest())
        .setDeserializer(new KafkaRecordDeserializationSchema<Change>() {
          @Override
          public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<Change> collector) throws java.io.IOException {
            collector.collect(Change.parse(record.key(), record.value(), record.partition()));
          }

          @Override
          public TypeInformation<Change> getProducedType() {
            return TypeInformation.of(Change.class);
          }
        })
        .build();
    if (windows) revenueWindows(env, source, out);
    else projection(env, source, out);
    env.execute(job + "-peer");
    Peer.result("");
  }

  // ------------------------------------------------------------------ job 1: the projection

  /** The latest row per id, guarded by commit order; what the job emits downstream. */
  public static class Row {
    public int tier;
    public long commitLsn;
    public long changeLsn;
    /** Null once deleted: the entry stays so an older replay cannot bring the row back. */
    public String after;
    public BigDecimal amount;

    public Row() {}
  }

  static void projection(StreamExecutionEnvironment env, KafkaSource<Change> source, String out) {
    env.fromSource(source, WatermarkStrategy.noWatermarks(), "orders")
        .filter(c -> c.op != null) // tombstones: the delete before them did the work
        .keyBy(c -> c.id)
        .process(new Upsert(out))
        .sinkTo(new DiscardingSink<>());
  }

  static final class Upsert extends KeyedProcessFunction<Long, Change, Row> {
    private final String out;
    private transient ValueState<Row> latest;
    // For the bench's oracle check only: live rows and the sum of their amounts, per subtask.
    private transient long liveKeys;
    private transient BigDecimal liveAmount;

    Upsert(String out) {
      this.out = out;
    }

    @Override
    public void open(OpenContext context) {
      latest = getRuntimeContext().getState(new ValueStateDescriptor<>("latest", Row.class));
      liveAmount = BigDecimal.ZERO;
    }

    @Override
    public void processElement(Change c, Context ctx, Collector<Row> collector) throws Exception {
      Peer.mark();
      Row previous = latest.value();
      if (previous != null && c.compareTo(previous.tier, previous.commitLsn, previous.changeLsn) <= 0) return;
      Row row = new Row();
      row.tier = c.tier;
      row.commitLsn = c.commitLsn;
      row.changeLsn = c.changeLsn;
      if (!"d".equals(c.op)) {
        row.after = c.after;
        row.amount = c.amount;
      }
      latest.update(row);
      if (previous != null && previous.after != null) {
        liveKeys -= 1;
        liveAmount = liveAmount.subtract(previous.amount);
      }
      if (row.after != null) {
        liveKeys += 1;
        liveAmount = liveAmount.add(row.amount);
      }
      collector.collect(row);
    }

    @Override
    public void close() {
      Peer.append(out, "{\"keys\":" + liveKeys + ",\"amount\":\"" + liveAmount.toPlainString() + "\"}");
    }
  }

  // ------------------------------------------------------------------ job 2: revenue windows

  static final OutputTag<Change> LATE = new OutputTag<>("late", TypeInformation.of(Change.class));

  /** Sum and count, exact (BigDecimal). */
  public static class Revenue {
    public BigDecimal sum = BigDecimal.ZERO;
    public long count;

    public Revenue() {}
  }

  static void revenueWindows(StreamExecutionEnvironment env, KafkaSource<Change> source, String out) {
    WatermarkStrategy<Change> watermarks = WatermarkStrategy.<Change>forBoundedOutOfOrderness(java.time.Duration.ofSeconds(5))
        .withTimestampAssigner((c, previous) -> c.tsMs);
    SingleOutputStreamOperator<String> rows = env.fromSource(source, watermarks, "orders")
        .filter(c -> ("c".equals(c.op) || "u".equals(c.op) || "r".equals(c.op)) && c.after != null)
        .map(c -> {
          Peer.mark();
          c.after = null; // the windows need status, amount and time only: a lighter shuffle
          return c;
        })
        .keyBy(c -> c.status)
        .window(TumblingEventTimeWindows.of(java.time.Duration.ofMinutes(1)))
        .allowedLateness(java.time.Duration.ofSeconds(30))
        .sideOutputLateData(LATE)
        .aggregate(new SumAmount(), new WindowRow());
    rows.sinkTo(new FileLines(out, "window"));
    DataStream<String> late = rows.getSideOutput(LATE).map(c -> "{\"lsn\":" + c.lsn + ",\"id\":" + c.id + "}");
    late.sinkTo(new FileLines(out, "late"));
  }

  static final class SumAmount implements AggregateFunction<Change, Revenue, Revenue> {
    @Override
    public Revenue createAccumulator() {
      return new Revenue();
    }

    @Override
    public Revenue add(Change c, Revenue r) {
      r.sum = r.sum.add(c.amount);
      r.count += 1;
      return r;
    }

    @Override
    public Revenue getResult(Revenue r) {
      return r;
    }

    @Override
    public Revenue merge(Revenue a, Revenue b) {
      a.sum = a.sum.add(b.sum);
      a.count += b.count;
      return a;
    }
  }

  static final class WindowRow extends ProcessWindowFunction<Revenue, String, String, TimeWindow> {
    @Override
    public void process(String status, Context ctx, Iterable<Revenue> results, Collector<String> out) {
      Revenue r = results.iterator().next();
      out.collect("{\"windowStart\":" + ctx.window().getStart() + ",\"windowEnd\":" + ctx.window().getEnd() + ",\"status\":\"" + status + "\",\"sum\":\"" + r.sum.setScale(2).toPlainString() + "\",\"count\":" + r.count + "}");
    }
  }

  /** Writes what it gets as tagged JSON lines when the job ends (the bench keeps the last row per window). */
  static final class FileLines implements Sink<String> {
    private final String file;
    private final String tag;

    FileLines(String file, String tag) {
      this.file = file;
      this.tag = tag;
    }

    @Override
    public SinkWriter<String> createWriter(WriterInitContext context) {
      StringBuilder buffer = new StringBuilder();
      return new SinkWriter<>() {
        @Override
        public void write(String line, Context ctx) {
          buffer.append("{\"").append(tag).append("\":").append(line).append("}\n");
        }

        @Override
        public void flush(boolean endOfInput) {}

        @Override
        public void close() {
          if (buffer.length() > 0) Peer.append(file, buffer.substring(0, buffer.length() - 1));
        }
      };
    }
  }
}
