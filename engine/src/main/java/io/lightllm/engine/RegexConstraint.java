package io.lightllm.engine;

import dk.brics.automaton.Automaton;
import dk.brics.automaton.RegExp;
import dk.brics.automaton.RunAutomaton;
import io.lightllm.models.tokenizer.Tokenizer;
import java.util.BitSet;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Structured output (the approach of outlines): a sequence's generated text must stay a prefix
 * of a match of a regular expression (a JSON schema is turned into one by the server), so before
 * each token is sampled every vocabulary token whose text would leave that language is masked on
 * the device (with the min_tokens masks, in {@link LogitPenalties}), and end-of-sequence is allowed
 * only once the text is a whole match.
 *
 * <p>The expression is compiled to a DFA ({@link Dfa}: dk.brics.automaton, whose states with no
 * path to acceptance are removed), and the output's position in it is one state. The tokens a state
 * allows are found once per state, by running every token's text from it, and kept (outlines' index,
 * built lazily): a step costs a lookup, not a pass of the expression over every token.
 */
final class RegexConstraint {
    /** The text each token adds, decoded after a plain token so that leading spaces are kept. */
    static final class Vocabulary {
        final String[] texts;

        Vocabulary(Tokenizer tokenizer, int vocabSize, Set<Integer> special) {
            texts = new String[vocabSize];
            int anchor = tokenizer.encode("a", false).length > 0 ? tokenizer.encode("a", false)[0] : 0;
            String before = tokenizer.decode(new int[] {anchor}, false);
            for (int id = 0; id < vocabSize; id++) {
                String both = special.contains(id) ? "" : tokenizer.decode(new int[] {anchor, id}, true);
                String text = both.startsWith(before) ? both.substring(before.length()) : "";
                // a byte of a multi-byte character decodes to U+FFFD alone: such tokens are not offered
                texts[id] = text.indexOf('\uFFFD') >= 0 ? "" : text;
            }
        }
    }

    /** A compiled expression and, per state, the tokens of one vocabulary it allows there (filled as states are reached). */
    static final class Dfa {
        private final RunAutomaton run;
        private final Vocabulary vocabulary;
        private final Map<Integer, BitSet> allowed = new ConcurrentHashMap<>();

        Dfa(String javaRegex, Vocabulary vocabulary) {
            Automaton a = new RegExp(JavaRegex.toBrics(javaRegex), RegExp.NONE).toAutomaton();
            a.removeDeadTransitions();
            this.run = new RunAutomaton(a);
            this.vocabulary = vocabulary;
        }

        /** The state after {@code text} from {@code state}, or -1 once it has left the language. */
        int walk(int state, String text) {
            for (int i = 0; i < text.length() && state >= 0; i++) {
                state = run.step(state, text.charAt(i));
            }
            return state;
        }

        BitSet allowed(int state) {
            return allowed.computeIfAbsent(state, s -> {
                BitSet ok = new BitSet(vocabulary.texts.length);
                for (int t = 0; t < vocabulary.texts.length; t++) {
                    String text = vocabulary.texts[t];
                    if (!text.isEmpty() && walk(s, text) >= 0) {
                        ok.set(t);
                    }
                }
                return ok;
            });
        }
    }

    private final Dfa dfa;
    private final StringBuilder text = new StringBuilder();
    private int state;

    RegexConstraint(Dfa dfa) {
        this.dfa = dfa;
        this.state = dfa.run.getInitialState();
    }

    /** Whether appending {@code token}'s text keeps the output a prefix of a match (empty texts never do). */
    boolean allows(int token) {
        return state >= 0 && dfa.allowed(state).get(token);
    }

    /** The tokens that keep the output a prefix of a match, as a set (shared: do not change it). */
    BitSet allowedTokens() {
        return state < 0 ? new BitSet() : dfa.allowed(state);
    }

    /** Whether the output so far is a whole match (end-of-sequence may come now). */
    boolean complete() {
        return state >= 0 && dfa.run.isAccept(state);
    }

    /** Whether some token extends the output (a whole match that none extends is done). */
    boolean canExtend() {
        return !allowedTokens().isEmpty();
    }

    void advance(int token) {
        if (token < dfa.vocabulary.texts.length) {
            String t = dfa.vocabulary.texts[token];
            text.append(t);
            state = state < 0 ? -1 : dfa.walk(state, t);
        }
    }

    String text() {
        return text.toString();
    }
}
