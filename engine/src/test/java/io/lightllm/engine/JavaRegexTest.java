package io.lightllm.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dk.brics.automaton.RegExp;
import dk.brics.automaton.RunAutomaton;
import java.util.List;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The translation to dk.brics.automaton keeps each expression's language: the DFA accepts exactly what java.util.regex matches. */
class JavaRegexTest {
    private static final List<String> REGEXES = List.of(
            "(yes|no), the (cat|dog) is [a-z]{1,8}\\. [0-9]{2}",
            "\"([^\"\\\\\\x00-\\x1f]|\\\\[\"\\\\/bfnrt])*\"",
            "-?(0|[1-9][0-9]{0,15})(\\.[0-9]{1,16})?([eE][+-]?[0-9]{1,3})?",
            "\\{\"name\":\\Q\"a.b*c\"\\E,\"n\":\\d+\\}",
            "^(?:\\w+\\s?)+$", "a.*?b", "[\\d\\s_-]+", "\\D\\W\\S", "x{2,}y{3}", "\\u0041\\x42\\t\\n", "[]a]+", "<@#&~>\"");
    private static final List<String> INPUTS = List.of("", "yes, the cat is happy. 42", "no, the dog is x. 7", "\"abc\"", "\"a\\\"b\"",
            "\"a\u0001\"", "-12.5e+3", "0.1", "01", "{\"name\":\"a.b*c\",\"n\":12}", "{\"name\":\"aXb*c\",\"n\":1}", "hello world",
            "hello  world", "a\nb", "ab", "12 3_-", "a!x", "xxxyyy", "xyyy", "AB\t\n", "]a]", "<@#&~>\"");

    @Test
    void translatedExpressionsMatchWhatJavaMatches() {
        for (String regex : REGEXES) {
            RunAutomaton dfa = new RunAutomaton(new RegExp(JavaRegex.toBrics(regex), RegExp.NONE).toAutomaton());
            Pattern java = Pattern.compile(regex, Pattern.DOTALL);
            int matched = 0;
            for (String s : INPUTS) {
                boolean expected = java.matcher(s).matches();
                assertEquals(expected, dfa.run(s), "'" + regex + "' on '" + s + "'");
                matched += expected ? 1 : 0;
            }
            assertTrue(matched > 0 || regex.startsWith("\\D"), "'" + regex + "' matches some input, so the check can fail");
        }
    }

    @Test
    void whatIsNotRegularIsRefusedByName() {
        for (String[] c : new String[][] {{"a(?=b)", "(?...)"}, {"(a)\\1", "\\1"}, {"a*+", "possessive"}, {"\\bword", "\\b"},
                {"a^b", "^ inside"}, {"[a-z&&[^e]]", "intersection"}}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> JavaRegex.toBrics(c[0]), c[0]);
            assertTrue(e.getMessage().contains(c[1]), e.getMessage());
        }
    }
}
