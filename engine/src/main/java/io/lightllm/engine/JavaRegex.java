package io.lightllm.engine;

/**
 * Java regular expressions (what the API takes, and what the server writes for JSON schemas) in
 * dk.brics.automaton's syntax, for the regular part of the language: literals and escapes
 * ({@code \t \n \r \f \x41 \u0041}, escaped punctuation, {@code \Q...\E} quotes), classes with ranges and negation, the
 * shorthands {@code \d \w \s} (and {@code \D \W \S} outside classes), {@code . | ( ) (?: )},
 * greedy or lazy quantifiers ({@code * + ? {n} {n,} {n,m}}: laziness does not change which
 * strings match), and {@code ^}/{@code $} at the ends (the whole output is matched anyway).
 * What is not regular or not a language (lookaround, back-references, possessive quantifiers,
 * word boundaries, inline flags) is refused with an {@link IllegalArgumentException} naming it, as
 * outlines and xgrammar refuse them.
 */
final class JavaRegex {
    private JavaRegex() {
    }

    static String toBrics(String regex) {
        StringBuilder out = new StringBuilder();
        boolean inClass = false;
        for (int i = 0; i < regex.length(); i++) {
            char c = regex.charAt(i);
            if (c == '\\') {
                if (i + 1 >= regex.length()) {
                    throw refused("a trailing backslash");
                }
                char e = regex.charAt(++i);
                switch (e) {
                    case 'd' -> out.append(inClass ? "0-9" : "[0-9]");
                    case 'w' -> out.append(inClass ? "a-zA-Z0-9_" : "[a-zA-Z0-9_]");
                    case 's' -> out.append(inClass ? SPACES : "[" + SPACES + "]");
                    case 'D', 'W', 'S' -> {
                        if (inClass) {
                            throw refused("\\" + e + " inside a character class");
                        }
                        out.append(e == 'D' ? "[^0-9]" : e == 'W' ? "[^a-zA-Z0-9_]" : "[^" + SPACES + "]");
                    }
                    case 'Q' -> { // \Q...\E quotes (Pattern.quote): every character up to \E stands for itself
                        int end = regex.indexOf("\\E", i + 1);
                        String quoted = regex.substring(i + 1, end < 0 ? regex.length() : end);
                        for (int q = 0; q < quoted.length(); q++) {
                            literal(out, quoted.charAt(q));
                        }
                        i = end < 0 ? regex.length() : end + 1;
                    }
                    case 't' -> literal(out, '\t');
                    case 'n' -> literal(out, '\n');
                    case 'r' -> literal(out, '\r');
                    case 'f' -> literal(out, '\f');
                    case 'e' -> literal(out, '\u001b');
                    case 'a' -> literal(out, '\u0007');
                    case 'x', 'u' -> {
                        int digits = e == 'x' ? 2 : 4;
                        try {
                            literal(out, (char) Integer.parseInt(regex.substring(i + 1, i + 1 + digits), 16));
                        } catch (RuntimeException bad) {
                            throw refused("\\" + e + " without " + digits + " hex digits");
                        }
                        i += digits;
                    }
                    default -> {
                        if (Character.isLetterOrDigit(e)) {
                            throw refused("\\" + e + " (back-references, boundaries and property classes are not regular here)");
                        }
                        literal(out, e);
                    }
                }
            } else if (inClass) {
                if (c == ']') {
                    inClass = false;
                    out.append(c);
                } else if (c == '-' || c == '^' && regex.charAt(i - 1) == '[') {
                    out.append(c);
                } else if (c == '[' || c == '&' && i + 1 < regex.length() && regex.charAt(i + 1) == '&') {
                    throw refused("nested classes and class intersection");
                } else {
                    literal(out, c);
                }
            } else {
                switch (c) {
                    case '[' -> {
                        inClass = true;
                        out.append(c);
                        if (i + 1 < regex.length() && regex.charAt(i + 1) == ']') { // a leading ] is literal in Java
                            literal(out, ']');
                            i++;
                        }
                    }
                    case '(' -> {
                        out.append(c);
                        if (i + 1 < regex.length() && regex.charAt(i + 1) == '?') {
                            if (i + 2 < regex.length() && regex.charAt(i + 2) == ':') {
                                i += 2;
                            } else {
                                throw refused("(?...) groups other than (?:...): lookaround, named groups and inline flags");
                            }
                        }
                    }
                    case ')', '|', '.' -> out.append(c);
                    case '*', '+', '?', '}' -> {
                        out.append(c);
                        if (i + 1 < regex.length() && regex.charAt(i + 1) == '?') {
                            i++; // lazy: the same strings match
                        } else if (i + 1 < regex.length() && regex.charAt(i + 1) == '+') {
                            throw refused("possessive quantifiers");
                        }
                    }
                    case '{' -> out.append(c);
                    case '^' -> {
                        if (i != 0) {
                            throw refused("^ inside the expression");
                        }
                    }
                    case '$' -> {
                        if (i != regex.length() - 1) {
                            throw refused("$ inside the expression");
                        }
                    }
                    case ',' -> out.append(c); // inside {n,m} it is syntax; elsewhere brics reads it as itself too
                    default -> literal(out, c);
                }
            }
        }
        if (inClass) {
            throw refused("an unclosed character class");
        }
        return out.toString();
    }

    /** What \s matches in Java: space, tab, newline, vertical tab, form feed, carriage return (escaped for a class). */
    private static final String SPACES = " \\\t\\\n\\\u000B\\\f\\\r";

    /** A character that stands for itself: letters and digits as they are, everything else escaped (brics' quoting). */
    private static void literal(StringBuilder out, char c) {
        if (Character.isLetterOrDigit(c) && c < 128) {
            out.append(c);
        } else {
            out.append('\\').append(c);
        }
    }

    private static IllegalArgumentException refused(String what) {
        return new IllegalArgumentException("the output constraint is not a regular expression this engine compiles: " + what);
    }
}
