package cdcflow.peers.flink;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.math.BigDecimal;

/** One Debezium orders message as the jobs read it (a tombstone has op null). A Flink POJO. */
public class Change {
  private static final ObjectMapper JSON = new ObjectMapper();

  public long id;
  /** c, u, r, d; null for a tombstone. */
  public String op;
  /** Commit order: snapshot rows (tier 0) below streamed changes (tier 1), then (commit LSN, change LSN). */
  public int tier;
  public long commitLsn;
  public long changeLsn;
  public long lsn;
  public long tsMs;
  public int partition;
  /** The `after` image as JSON text (null for a delete or tombstone). */
  public String after;
  public String status;
  public BigDecimal amount;

  public Change() {}

  public static Change parse(byte[] key, byte[] value, int partition) throws IOException {
    Change c = new Change();
    c.id = JSON.readTree(key).get("id").asLong();
    c.partition = partition;
    if (value == null) return c;
    JsonNode v = JSON.readTree(value);
    c.op = v.get("op").asText();
    JsonNode source = v.get("source");
    c.tsMs = source.get("ts_ms").asLong();
    c.lsn = source.get("lsn").asLong();
    c.tier = "r".equals(c.op) ? 0 : 1;
    c.changeLsn = c.lsn;
    JsonNode sequence = source.get("sequence");
    if (sequence != null && !sequence.isNull()) {
      JsonNode pair = JSON.readTree(sequence.asText());
      if (!pair.get(0).isNull()) c.commitLsn = Long.parseLong(pair.get(0).asText());
      if (!pair.get(1).isNull()) c.changeLsn = Long.parseLong(pair.get(1).asText());
    }
    JsonNode after = v.get("after");
    if (after != null && !after.isNull()) {
      c.after = after.toString();
      c.status = after.get("status").asText();
      c.amount = new BigDecimal(after.get("amount").asText());
    }
    return c;
  }

  /** Positive when this change comes after (tier, commit, change) in commit order. */
  public int compareTo(int otherTier, long otherCommit, long otherChange) {
    if (tier != otherTier) return Integer.compare(tier, otherTier);
    if (commitLsn != otherCommit) return Long.compare(commitLsn, otherCommit);
    return Long.compare(changeLsn, otherChange);
  }
}
