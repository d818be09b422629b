package io.lightllm.engine;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.*;
import java.util.*;
/**
 * The per-step penalty pass ({@code LogitPenalties.apply}) for SEQS sequences of a 512-token prompt and OUT generated
 * tokens each, repetition penalty 1.1, a 32,000-token vocabulary, on the jvm device: the median of 100 steps after 50
 * of warm-up. In the engine's package (the class is package-private), so it is compiled onto the class path:
 * <pre>
 * CP="engine/target/classes:models/target/classes:tornado-kernels/target/classes:$(ls server/target/lib/*.jar | tr '\n' ':')"
 * javac -cp "$CP" -d /tmp/pen bench/engine/PenaltyPass.java
 * java @tornado-config/jvm.args -cp "/tmp/pen:$CP" io.lightllm.engine.PenaltyPass 400 64
 * </pre>
 */
public class PenaltyPass {
  public static void main(String[] a) {
    Device d = Devices.get("jvm");
    int vocab = 32000, seqs = Integer.parseInt(a[0]), prompt = 512, out = Integer.parseInt(a[1]);
    Random rnd = new Random(1);
    List<Request> rs = new ArrayList<>();
    SamplingParams p = SamplingParams.builder().repetitionPenalty(1.1f).maxNewTokens(1000).build();
    for (int s = 0; s < seqs; s++) {
      Request r = Request.group(s, rnd.ints(prompt, 0, vocab).toArray(), p, 1, 1000).getFirst();
      for (int i = 0; i < out; i++) r.addToken(rnd.nextInt(vocab));
      rs.add(r);
    }
    DeviceBuffer logits = d.allocate(DType.F32, (long) seqs * vocab);
    double[] ms = new double[150];
    for (int it = 0; it < ms.length; it++) {
      long t0 = System.nanoTime();
      LogitPenalties.apply(d, logits, rs, vocab, Set.of(2));
      ms[it] = (System.nanoTime() - t0) / 1e6;
    }
    double[] last = java.util.Arrays.copyOfRange(ms, 50, 150); java.util.Arrays.sort(last);
    System.out.printf("seqs %d out %d: median %.2f ms, p10 %.2f, p90 %.2f%n", seqs, out, last[50], last[10], last[90]);
  }
}
