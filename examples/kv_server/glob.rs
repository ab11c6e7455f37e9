//! Redis's glob patterns (`KEYS user:*`, `CONFIG GET app*`): `*`, `?`,
//! `[abc]`, `[^a-z]`, `\x` for a literal `x`. A port of Redis's
//! `stringmatchlen`, edge cases included (an unclosed `[` matches as
//! Redis's does), so `KEYS` finds what Redis finds.
//!
//! Each `*` tries the rest of the pattern at every position of the rest
//! of the string; once the rest failed everywhere, earlier stars give up
//! too (Redis's fix for patterns such as `*a*a*a*b` taking exponential
//! time), and stars nested deeper than Redis allows match nothing rather
//! than exhaust the stack.

/// The deepest star nesting tried (Redis's own limit).
const MAX_NESTING: usize = 1000;

/// Whether `string` matches `pattern`; `nocase` compares ASCII letters
/// without case.
pub fn matches(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let mut give_up = false;
    match_from(pattern, 0, string, 0, nocase, &mut give_up, 0)
}

fn same(a: u8, b: u8, nocase: bool) -> bool {
    match nocase {
        true => a.eq_ignore_ascii_case(&b),
        false => a == b,
    }
}

/// A byte as C's (signed) `char` compares in a `[a-z]` range.
fn signed(byte: u8, nocase: bool) -> i32 {
    let byte = if nocase { byte.to_ascii_lowercase() } else { byte };
    i32::from(byte as i8)
}

fn match_from(
    pattern: &[u8],
    mut p: usize,
    string: &[u8],
    mut s: usize,
    nocase: bool,
    give_up: &mut bool,
    nesting: usize,
) -> bool {
    if nesting > MAX_NESTING {
        return false;
    }
    // Past the end reads as the C string's terminating NUL.
    let at = |i: usize| pattern.get(i).copied().unwrap_or(0);
    while p < pattern.len() && s < string.len() {
        match pattern[p] {
            b'*' => {
                while at(p + 1) == b'*' {
                    p += 1;
                }
                if pattern.len() - p == 1 {
                    return true;
                }
                while s < string.len() {
                    if match_from(pattern, p + 1, string, s, nocase, give_up, nesting + 1) {
                        return true;
                    }
                    if *give_up {
                        return false;
                    }
                    s += 1;
                }
                *give_up = true;
                return false;
            }
            b'?' => s += 1,
            b'[' => {
                p += 1;
                let not = at(p) == b'^';
                if not {
                    p += 1;
                }
                let mut matched = false;
                loop {
                    let left = pattern.len().saturating_sub(p);
                    if at(p) == b'\\' && left >= 2 {
                        p += 1;
                        if pattern[p] == string[s] {
                            matched = true;
                        }
                    } else if at(p) == b']' {
                        break;
                    } else if left == 0 {
                        // An unclosed class: back onto its last byte.
                        p -= 1;
                        break;
                    } else if left >= 3 && pattern[p + 1] == b'-' {
                        let (mut start, mut end) =
                            (signed(pattern[p], nocase), signed(pattern[p + 2], nocase));
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        let c = signed(string[s], nocase);
                        p += 2;
                        if c >= start && c <= end {
                            matched = true;
                        }
                    } else if same(pattern[p], string[s], nocase) {
                        matched = true;
                    }
                    p += 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s += 1;
            }
            byte => {
                if byte == b'\\' && pattern.len() - p >= 2 {
                    p += 1;
                }
                if !same(pattern[p], string[s], nocase) {
                    return false;
                }
                s += 1;
            }
        }
        p += 1;
        if s == string.len() {
            while at(p) == b'*' {
                p += 1;
            }
            break;
        }
    }
    p >= pattern.len() && s == string.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, string: &str) -> bool {
        matches(pattern.as_bytes(), string.as_bytes(), false)
    }

    #[test]
    fn globs_match_as_in_redis() {
        assert!(m("*", "anything"));
        assert!(m("user:*", "user:1"));
        assert!(!m("user:*", "users:1"));
        assert!(m("h?llo", "hello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hbllo"), "a reversed range");
        assert!(m("h\\*llo", "h*llo"));
        assert!(!m("h\\*llo", "hello"));
        assert!(m("a*", "a"), "a trailing star matches nothing");
        assert!(m("a**b", "ab"));
        assert!(!m("", "a"));
        assert!(!m("a", ""));
        assert!(m("[abc", "a"), "an unclosed class");
        assert!(matches(b"SAVE", b"save", true));
        assert!(matches(b"app*", b"appendonly", true));
    }

    #[test]
    fn pathological_patterns_end_quickly() {
        let string = "a".repeat(10_000);
        let pattern = "*a".repeat(5_000) + "b";
        assert!(!m(&pattern, &string));
        let deep = "*a".repeat(2_000);
        assert!(
            !m(&deep, &"a".repeat(4_000)),
            "nesting past the limit matches nothing"
        );
    }
}
