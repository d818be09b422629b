package io.lightllm.engine;

import io.lightllm.models.infer.TokenKvPool;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * The prefix cache (LightLLM's dynamic prompt cache, SGLang's radix cache): a radix tree over
 * token ids whose nodes hold the KV slots of their tokens, so that a prompt starting with tokens
 * seen before reuses their KV and is prefilled only from where it differs.
 *
 * <p>The tree holds one pool reference to every slot it lists ({@link TokenKvPool#retain}); a
 * request using a cached prefix holds its own references as well and <em>locks</em> the nodes
 * it passes, so they are not evicted under it. Unlocked nodes stay cached until the pool needs
 * room: {@link #evict} frees least-recently-used leaves first. {@link #lockedTokens} is what the
 * router counts once for all requests sharing them. Used by the inference loop's thread only.
 */
final class PrefixCache {
    /** An edge of the tree: its tokens, their slots, and the subtree below. */
    private static final class Node {
        Node parent;
        int[] tokens;
        int[] slots;
        final Map<Integer, Node> children = new HashMap<>();
        int users;
        long lastUsed;

        Node(Node parent, int[] tokens, int[] slots) {
            this.parent = parent;
            this.tokens = tokens;
            this.slots = slots;
        }
    }

    /**
     * A cached prefix in use: its length, its slots, and the deepest node it passes (locked, with
     * every node above it, until {@link #unlock}).
     */
    record Match(int length, int[] slots, Node deepest) {
        static final Match NONE = new Match(0, new int[0], null);
    }

    private final TokenKvPool pool;
    private final Node root = new Node(null, new int[0], new int[0]);
    private long clock;
    private int cachedTokens;
    private int lockedTokens;
    private long lookupTokens;
    private long hitTokens;

    PrefixCache(TokenKvPool pool) {
        this.pool = pool;
    }

    /**
     * The longest cached prefix of {@code tokens}, at most {@code limit} tokens long, locked for the
     * caller. The caller takes its own references to the slots (it shares them with the tree).
     */
    Match lookup(int[] tokens, int limit) {
        Match m = longest(tokens, limit);
        if (m.deepest() != null && m.length() < depth(m.deepest())) {
            // the prefix ends inside an edge: lock only its part, so the router's count is exact
            Node upper = split(m.deepest(), m.deepest().tokens.length - (depth(m.deepest()) - m.length()));
            m = new Match(m.length(), m.slots(), upper);
        }
        lookupTokens += tokens.length;
        hitTokens += m.length();
        lock(m.deepest());
        return m;
    }

    /** The length {@link #lookup} would give now, without locking or counting (for the router's estimate). */
    int peek(int[] tokens, int limit) {
        return longest(tokens, limit).length();
    }

    private Match longest(int[] tokens, int limit) {
        Node node = root;
        int at = 0;
        int[] slots = new int[Math.min(limit, tokens.length)];
        Node deepest = null;
        while (at < slots.length) {
            Node child = node.children.get(tokens[at]);
            if (child == null) {
                break;
            }
            int same = common(child.tokens, tokens, at, slots.length);
            System.arraycopy(child.slots, 0, slots, at, same);
            at += same;
            deepest = child;
            if (same < child.tokens.length) {
                break;
            }
            node = child;
        }
        return at == 0 ? Match.NONE : new Match(at, Arrays.copyOf(slots, at), deepest);
    }

    /** Tokens from the root to the end of {@code node}'s edge. */
    private static int depth(Node node) {
        int d = 0;
        for (Node n = node; n.parent != null; n = n.parent) {
            d += n.tokens.length;
        }
        return d;
    }

    /** Tokens of {@code edge} equal to {@code tokens[from..]}, before {@code end}. */
    private static int common(int[] edge, int[] tokens, int from, int end) {
        int n = 0;
        while (n < edge.length && from + n < end && edge[n] == tokens[from + n]) {
            n++;
        }
        return n;
    }

    /**
     * Caches the KV of {@code tokens[0, length)} held in {@code slots[0, length)} (a request's
     * sequence after its prefill or at its end) and returns the prefix locked for the request,
     * which gives up its {@code previous} lock. Tokens already cached keep their cached slots; the
     * rest are added, the tree taking a reference to their slots.
     */
    Match insert(int[] tokens, int[] slots, int length, Match previous) {
        Node node = root;
        int at = 0;
        while (at < length) {
            Node child = node.children.get(tokens[at]);
            if (child == null) {
                int[] t = Arrays.copyOfRange(tokens, at, length), s = Arrays.copyOfRange(slots, at, length);
                pool.retain(s);
                child = new Node(node, t, s);
                node.children.put(t[0], child);
                cachedTokens += t.length;
                node = child;
                at = length;
                break;
            }
            int same = common(child.tokens, tokens, at, length);
            if (same < child.tokens.length) {
                child = split(child, same);
            }
            node = child;
            at += same;
        }
        unlock(previous);
        Match m = node == root ? Match.NONE : new Match(length, pathSlots(node, length), node);
        lock(m.deepest());
        return m;
    }

    /** The slots of the path from the root to {@code node}, {@code length} of them. */
    private static int[] pathSlots(Node node, int length) {
        int[] out = new int[length];
        int end = length;
        for (Node n = node; n.parent != null; n = n.parent) {
            end -= n.tokens.length;
            System.arraycopy(n.slots, 0, out, end, n.tokens.length);
        }
        return out;
    }

    /**
     * Cuts {@code node}'s edge after {@code k} tokens: a new node takes the first k and its place
     * in the tree, with the same users; {@code node} keeps the rest and its subtree, so that locks
     * recorded by their deepest node still release the whole path.
     */
    private Node split(Node node, int k) {
        Node upper = new Node(node.parent, Arrays.copyOf(node.tokens, k), Arrays.copyOf(node.slots, k));
        upper.users = node.users;
        upper.lastUsed = node.lastUsed;
        node.parent.children.put(upper.tokens[0], upper);
        node.tokens = Arrays.copyOfRange(node.tokens, k, node.tokens.length);
        node.slots = Arrays.copyOfRange(node.slots, k, node.slots.length);
        node.parent = upper;
        upper.children.put(node.tokens[0], node);
        return upper;
    }

    private void lock(Node deepest) {
        long now = ++clock;
        for (Node n = deepest; n != null && n != root; n = n.parent) {
            if (n.users++ == 0) {
                lockedTokens += n.tokens.length;
            }
            n.lastUsed = now;
        }
    }

    /** Releases a lookup's or insert's lock. */
    void unlock(Match m) {
        for (Node n = m.deepest(); n != null && n != root; n = n.parent) {
            if (--n.users == 0) {
                lockedTokens -= n.tokens.length;
            }
        }
    }

    /**
     * Drops unlocked leaves, least recently used first, until the pool has {@code wanted} more
     * free slots or nothing unlocked is left; returns the slots that became free.
     */
    int evict(int wanted) {
        int before = pool.freeSlots();
        PriorityQueue<Node> leaves = new PriorityQueue<>((a, b) -> Long.compare(a.lastUsed, b.lastUsed));
        collectLeaves(root, leaves);
        while (pool.freeSlots() - before < wanted && !leaves.isEmpty()) {
            Node leaf = leaves.poll();
            Node parent = leaf.parent;
            parent.children.remove(leaf.tokens[0]);
            pool.free(leaf.slots);
            cachedTokens -= leaf.tokens.length;
            if (parent != root && parent.children.isEmpty() && parent.users == 0) {
                leaves.add(parent);
            }
        }
        return pool.freeSlots() - before;
    }

    /** Drops everything unlocked (the engine's idle state keeps no cache when asked). */
    int clear() {
        return evict(Integer.MAX_VALUE);
    }

    private static void collectLeaves(Node node, PriorityQueue<Node> out) {
        for (Node child : node.children.values()) {
            if (child.children.isEmpty()) {
                if (child.users == 0) {
                    out.add(child);
                }
            } else {
                collectLeaves(child, out);
            }
        }
    }

    /** Slots the tree holds a reference to. */
    int cachedTokens() {
        return cachedTokens;
    }

    /** Cached tokens that running requests use (counted once by the router). */
    int lockedTokens() {
        return lockedTokens;
    }

    /** Prompt tokens looked up, and those found cached. */
    long lookupTokens() {
        return lookupTokens;
    }

    long hitTokens() {
        return hitTokens;
    }
}
