//! Reading commands the way Redis reads them: RESP2 arrays of bulk strings
//! (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`), and inline commands typed by hand
//! (`GET k\r\n`, with Redis's quoting rules).
//!
//! The parser works over the bytes a connection has read ahead, copying
//! nothing: a command's arguments are ranges of the input (an inline
//! command's, which quoting can change, live in the parser). A command
//! that has not all arrived is [`Step::Incomplete`]; the parser remembers
//! how far it got, and the next call, given the same command's bytes with
//! more behind them, goes on from there. Memory follows what arrived,
//! never what a length claims: a bulk length is checked against the
//! limits and then only counted against the bytes that follow it.
//!
//! Errors are Redis's own words (`Protocol error: invalid bulk length`),
//! plus one of this server's own limits (a command's total size). After
//! one, the connection is answered with it and closed, as Redis does.
//!
//! Self-contained (std only): the fuzz target `resp_parser` includes it.

use std::fmt;

/// Redis's `PROTO_INLINE_MAX_SIZE`: the longest an inline command, or a
/// count line (`*N`, `$N`), may grow without its end before it is an error.
pub const INLINE_MAX: usize = 64 * 1024;

/// What the parser accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The longest bulk string (Redis's `proto-max-bulk-len`).
    pub max_bulk: usize,
    /// The most arguments in one command, the command's name included.
    pub max_args: usize,
    /// The most bytes one command may take on the wire, all arguments
    /// together: what a connection may hold of a command in progress.
    pub max_command: usize,
}

/// A request Redis would refuse, in Redis's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// An inline command longer than [`INLINE_MAX`] without its newline.
    TooBigInline,
    /// An inline command with a quote that does not close (or closes
    /// without a space after it).
    UnbalancedQuotes,
    /// A `*` count line longer than [`INLINE_MAX`] without its end.
    TooBigCount,
    /// A `*` count that is no number, or more arguments than allowed.
    InvalidMultibulkLength,
    /// A `$` length line longer than [`INLINE_MAX`] without its end.
    TooBigBulkCount,
    /// An array element that is not a bulk string: the byte found instead
    /// of `$` (a nested array's `*`, say).
    ExpectedDollar(u8),
    /// A `$` length that is no number, negative, or over the bulk limit.
    InvalidBulkLength,
    /// An inline command with more arguments than allowed.
    TooManyArguments(usize),
    /// A command larger than its limit, all arguments together.
    CommandTooLarge(usize),
}

impl ProtocolError {
    /// The error's text, for a `-ERR` reply: Redis's bytes (an unexpected
    /// byte is quoted as it is, a line break made a space).
    pub fn message(&self) -> Vec<u8> {
        match self {
            ProtocolError::ExpectedDollar(byte) => {
                let byte = if matches!(byte, b'\r' | b'\n') {
                    b' '
                } else {
                    *byte
                };
                let mut message = b"Protocol error: expected '$', got '".to_vec();
                message.push(byte);
                message.push(b'\'');
                message
            }
            other => other.to_string().into_bytes(),
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::TooBigInline => f.write_str("Protocol error: too big inline request"),
            ProtocolError::UnbalancedQuotes => f.write_str("Protocol error: unbalanced quotes in request"),
            ProtocolError::TooBigCount => f.write_str("Protocol error: too big mbulk count string"),
            ProtocolError::InvalidMultibulkLength => f.write_str("Protocol error: invalid multibulk length"),
            ProtocolError::TooBigBulkCount => f.write_str("Protocol error: too big bulk count string"),
            ProtocolError::ExpectedDollar(byte) => {
                write!(f, "Protocol error: expected '$', got {:?}", char::from(*byte))
            }
            ProtocolError::InvalidBulkLength => f.write_str("Protocol error: invalid bulk length"),
            ProtocolError::TooManyArguments(limit) => {
                write!(
                    f,
                    "Protocol error: more than {limit} arguments in an inline command"
                )
            }
            ProtocolError::CommandTooLarge(limit) => {
                write!(f, "Protocol error: command larger than {limit} bytes")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

/// What one call of [`Parser::parse`] found at the front of its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// A whole command, this many bytes long: [`Parser::args`] has it.
    Command(usize),
    /// Nothing to run, this many bytes long: an empty line, or an array
    /// of zero (or fewer) elements, which Redis skips without a reply.
    Empty(usize),
    /// The command has not all arrived: call again with its bytes and
    /// more.
    Incomplete,
}

/// Where the arguments of the last command live.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Source {
    /// In the input (a RESP array).
    #[default]
    Input,
    /// In the parser (an inline command).
    Inline,
}

/// A RESP array being read: elements still to come, and where the next
/// one starts (from the command's first byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Progress {
    remaining: usize,
    next: usize,
}

/// Reads commands one at a time; one per connection, since it remembers
/// a command in progress. Reusable: its buffers are kept from one command
/// to the next ([`trim`](Self::trim) gives large ones back).
#[derive(Debug, Default)]
pub struct Parser {
    /// The last command's arguments: ranges of the input, or of `inline`.
    ranges: Vec<(usize, usize)>,
    source: Source,
    /// An inline command's arguments, unquoted.
    inline: Vec<u8>,
    /// The RESP array in progress, if its end has not arrived yet.
    progress: Option<Progress>,
}

/// The most arguments reserved for before they arrive (as Redis does).
const RESERVE_ARGS: usize = 1024;

impl Parser {
    /// Parses the command at the front of `input`. After
    /// [`Step::Incomplete`] the next call must be given the same bytes
    /// again (the command's start) with more behind them; the parser goes
    /// on where it stopped. After an error the connection is done: the
    /// parser must not be used again.
    pub fn parse(&mut self, input: &[u8], limits: &Limits) -> Result<Step, ProtocolError> {
        let progress = match self.progress {
            Some(progress) => progress,
            None => match input.first() {
                None => return Ok(Step::Incomplete),
                Some(b'*') => match self.array_header(input, limits)? {
                    Header::Incomplete => return Ok(Step::Incomplete),
                    Header::Empty(consumed) => return Ok(Step::Empty(consumed)),
                    Header::Elements(progress) => progress,
                },
                Some(_) => return self.inline(input, limits),
            },
        };
        self.elements(input, progress, limits)
    }

    /// Reads `*N\r\n`.
    fn array_header(&mut self, input: &[u8], limits: &Limits) -> Result<Header, ProtocolError> {
        let Some(cr) = find(input, 1, b'\r') else {
            return match input.len() > INLINE_MAX {
                true => Err(ProtocolError::TooBigCount),
                false => Ok(Header::Incomplete),
            };
        };
        // Redis wants the byte after the `\r` there, and takes it for
        // `\n` without looking.
        if cr + 1 >= input.len() {
            return Ok(Header::Incomplete);
        }
        let count = match string2ll(&input[1..cr]) {
            Some(count) if count <= i64::from(i32::MAX) && count <= limits.max_args as i64 => count,
            _ => return Err(ProtocolError::InvalidMultibulkLength),
        };
        let next = cr + 2;
        if count <= 0 {
            return Ok(Header::Empty(next));
        }
        let remaining = count as usize;
        self.ranges.clear();
        self.ranges.reserve(remaining.min(RESERVE_ARGS));
        self.source = Source::Input;
        Ok(Header::Elements(Progress { remaining, next }))
    }

    /// Reads an array's bulk strings, `$N\r\n` and `N` bytes each, from
    /// where `progress` says.
    fn elements(
        &mut self,
        input: &[u8],
        mut progress: Progress,
        limits: &Limits,
    ) -> Result<Step, ProtocolError> {
        while progress.remaining > 0 {
            let at = progress.next;
            let Some(cr) = find(input, at, b'\r') else {
                if input.len() - at.min(input.len()) > INLINE_MAX {
                    return Err(ProtocolError::TooBigBulkCount);
                }
                return self.incomplete(input, progress, limits);
            };
            if cr + 1 >= input.len() {
                return self.incomplete(input, progress, limits);
            }
            if input[at] != b'$' {
                return Err(ProtocolError::ExpectedDollar(input[at]));
            }
            let len = match string2ll(&input[at + 1..cr]) {
                Some(len) if len >= 0 && len as u64 <= limits.max_bulk as u64 => len as usize,
                _ => return Err(ProtocolError::InvalidBulkLength),
            };
            let start = cr + 2;
            // What the command would take with this element: refused on
            // the claim, before its bytes come.
            let end = start + len + 2;
            if end > limits.max_command {
                return Err(ProtocolError::CommandTooLarge(limits.max_command));
            }
            if input.len() < end {
                return self.incomplete(input, progress, limits);
            }
            self.ranges.push((start, start + len));
            // As Redis: the two bytes after the data are skipped unread.
            progress.next = end;
            progress.remaining -= 1;
        }
        self.progress = None;
        Ok(Step::Command(progress.next))
    }

    /// Remembers an array in progress; all of `input` is its so far.
    fn incomplete(
        &mut self,
        input: &[u8],
        progress: Progress,
        limits: &Limits,
    ) -> Result<Step, ProtocolError> {
        if input.len() > limits.max_command {
            return Err(ProtocolError::CommandTooLarge(limits.max_command));
        }
        self.progress = Some(progress);
        Ok(Step::Incomplete)
    }

    /// Reads an inline command: one line, split as Redis splits it.
    fn inline(&mut self, input: &[u8], limits: &Limits) -> Result<Step, ProtocolError> {
        let Some(newline) = find(input, 0, b'\n') else {
            return match input.len() > INLINE_MAX {
                true => Err(ProtocolError::TooBigInline),
                false => Ok(Step::Incomplete),
            };
        };
        let end = match newline > 0 && input[newline - 1] == b'\r' {
            true => newline - 1,
            false => newline,
        };
        self.ranges.clear();
        self.inline.clear();
        self.source = Source::Inline;
        split_inline(&input[..end], &mut self.inline, &mut self.ranges)
            .map_err(|()| ProtocolError::UnbalancedQuotes)?;
        if self.ranges.len() > limits.max_args {
            return Err(ProtocolError::TooManyArguments(limits.max_args));
        }
        match self.ranges.is_empty() {
            true => Ok(Step::Empty(newline + 1)),
            false => Ok(Step::Command(newline + 1)),
        }
    }

    /// The arguments of the command the last [`Step::Command`] found in
    /// `input` (the same bytes that call was given).
    pub fn args<'a>(&'a self, input: &'a [u8]) -> Args<'a> {
        let base = match self.source {
            Source::Input => input,
            Source::Inline => &self.inline,
        };
        Args {
            base,
            ranges: &self.ranges,
        }
    }

    /// Gives back the memory a very large command left (a connection
    /// keeps its parser while it waits).
    pub fn trim(&mut self) {
        if self.ranges.capacity() > RESERVE_ARGS {
            self.ranges = Vec::new();
        }
        if self.inline.capacity() > INLINE_MAX {
            self.inline = Vec::new();
        }
    }
}

/// What an array's first line said.
enum Header {
    Incomplete,
    Empty(usize),
    Elements(Progress),
}

/// The arguments of one command, the command's name first.
#[derive(Clone, Copy, Debug)]
pub struct Args<'a> {
    base: &'a [u8],
    ranges: &'a [(usize, usize)],
}

impl<'a> Args<'a> {
    /// How many, the name included (Redis's `argc`).
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether there are none (never, for a command found).
    #[allow(dead_code)] // beside `len`, as clippy wants
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The `i`th argument; 0 is the command's name.
    ///
    /// # Panics
    /// If there are not that many.
    pub fn get(&self, i: usize) -> &'a [u8] {
        let (start, end) = self.ranges[i];
        &self.base[start..end]
    }

    /// All of them, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        let base = self.base;
        self.ranges.iter().map(move |&(start, end)| &base[start..end])
    }
}

/// The first `byte` in `input` from `from` on.
fn find(input: &[u8], from: usize, byte: u8) -> Option<usize> {
    input
        .get(from..)?
        .iter()
        .position(|&b| b == byte)
        .map(|i| i + from)
}

/// Redis's `string2ll`: a decimal `i64` with no sign but `-`, no leading
/// zero, no space, at most 20 bytes. Redis reads every number a client
/// sends this way (lengths, counts, `INCRBY`'s and `EXPIRE`'s arguments,
/// a value `INCR` changes), so what one accepts the other does too.
pub fn string2ll(s: &[u8]) -> Option<i64> {
    // Redis's LONG_STR_SIZE: 21.
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut value: u64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))?;
    }
    if negative {
        if value > i64::MAX as u64 + 1 {
            return None;
        }
        Some((value as i64).wrapping_neg())
    } else {
        i64::try_from(value).ok()
    }
}

/// C's `isspace` in the C locale.
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex_value(byte: u8) -> u8 {
    match byte {
        b'0'..=b'9' => byte - b'0',
        b'a'..=b'f' => byte - b'a' + 10,
        b'A'..=b'F' => byte - b'A' + 10,
        _ => 0,
    }
}

/// Redis's `sdssplitargs`: splits an inline command into arguments,
/// unquoted into `out`, their ranges pushed to `ranges`. Words are split
/// on blanks; `"..."` takes the escapes `\n \r \t \b \a \xHH` and `\"`,
/// `'...'` only `\'`; a closing quote must be followed by a blank or the
/// end. A NUL byte ends the line, as it ends Redis's C string. `Err` for
/// unbalanced quotes.
fn split_inline(line: &[u8], out: &mut Vec<u8>, ranges: &mut Vec<(usize, usize)>) -> Result<(), ()> {
    let line = match line.iter().position(|&b| b == 0) {
        Some(nul) => &line[..nul],
        None => line,
    };
    // Past the end reads as the C string's terminating NUL.
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut p = 0;
    loop {
        while p < line.len() && is_space(line[p]) {
            p += 1;
        }
        if p >= line.len() {
            return Ok(());
        }
        let start = out.len();
        let (mut in_double, mut in_single, mut done) = (false, false, false);
        while !done {
            let c = at(p);
            if in_double {
                if c == b'\\'
                    && at(p + 1) == b'x'
                    && at(p + 2).is_ascii_hexdigit()
                    && at(p + 3).is_ascii_hexdigit()
                {
                    out.push(hex_value(at(p + 2)) * 16 + hex_value(at(p + 3)));
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    out.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return Err(());
                    }
                    done = true;
                } else if c == 0 {
                    return Err(());
                } else {
                    out.push(c);
                }
            } else if in_single {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    out.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return Err(());
                    }
                    done = true;
                } else if c == 0 {
                    return Err(());
                } else {
                    out.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    _ => out.push(c),
                }
            }
            if at(p) != 0 {
                p += 1;
            }
        }
        ranges.push((start, out.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_bulk: 1024,
        max_args: 16,
        max_command: 4096,
    };

    /// The commands `input` holds, parsed one after another, and what is
    /// left over.
    fn commands(input: &[u8]) -> (Vec<Vec<Vec<u8>>>, Result<usize, ProtocolError>) {
        let mut parser = Parser::default();
        let mut found = Vec::new();
        let mut at = 0;
        loop {
            match parser.parse(&input[at..], &LIMITS) {
                Ok(Step::Command(n)) => {
                    found.push(parser.args(&input[at..]).iter().map(<[u8]>::to_vec).collect());
                    at += n;
                }
                Ok(Step::Empty(n)) => at += n,
                Ok(Step::Incomplete) => return (found, Ok(input.len() - at)),
                Err(e) => return (found, Err(e)),
            }
        }
    }

    fn args(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    #[test]
    fn arrays_of_bulk_strings_back_to_back() {
        let (found, rest) =
            commands(b"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n*2\r\n$3\r\nGET");
        assert_eq!(found, vec![args(&["PING"]), args(&["SET", "k", ""])]);
        assert_eq!(rest, Ok(11), "the incomplete GET waits");
    }

    #[test]
    fn a_command_in_pieces_is_the_same_command() {
        let whole = b"*3\r\n$3\r\nSET\r\n$5\r\nhello\r\n$11\r\nhello world\r\n";
        for split in 0..whole.len() {
            let mut parser = Parser::default();
            let first = parser.parse(&whole[..split], &LIMITS).unwrap();
            assert_eq!(first, Step::Incomplete, "split at {split}");
            assert_eq!(parser.parse(whole, &LIMITS).unwrap(), Step::Command(whole.len()));
            let got: Vec<&[u8]> = parser.args(whole).iter().collect();
            assert_eq!(got, [&b"SET"[..], b"hello", b"hello world"]);
        }
    }

    #[test]
    fn binary_data_and_line_breaks_inside_bulk_strings() {
        let (found, _) = commands(b"*2\r\n$4\r\nECHO\r\n$6\r\na\r\n\0\r\n\r\n");
        assert_eq!(found, vec![vec![b"ECHO".to_vec(), b"a\r\n\0\r\n".to_vec()]]);
    }

    #[test]
    fn empty_arrays_and_blank_lines_are_skipped() {
        let (found, rest) = commands(b"*0\r\n*-1\r\n\r\n   \r\nPING\r\n");
        assert_eq!(found, vec![args(&["PING"])]);
        assert_eq!(rest, Ok(0));
    }

    #[test]
    fn inline_commands_split_as_redis_splits_them() {
        let (found, _) = commands(b"set \"a b\" 'c''\r\n");
        assert!(found.is_empty());
        let (_, error) = commands(b"set \"a b\" 'c''\r\n");
        assert_eq!(error, Err(ProtocolError::UnbalancedQuotes));
        let (found, _) = commands(b"SET  \"a\\x41\\n\"   'it\\'s'\tx\n");
        assert_eq!(
            found,
            vec![vec![
                b"SET".to_vec(),
                b"aA\n".to_vec(),
                b"it's".to_vec(),
                b"x".to_vec()
            ]]
        );
        let (found, _) = commands(b"ECHO \"\"\r\n");
        assert_eq!(found, vec![args(&["ECHO", ""])]);
        // A NUL ends the line as it ends a C string.
        let (found, _) = commands(b"ECHO a\0b c\r\n");
        assert_eq!(found, vec![args(&["ECHO", "a"])]);
        let (_, error) = commands(b"ECHO \"abc\r\n");
        assert_eq!(error, Err(ProtocolError::UnbalancedQuotes));
        let (_, error) = commands(b"ECHO \"a\"b\r\n");
        assert_eq!(error, Err(ProtocolError::UnbalancedQuotes));
    }

    #[test]
    fn counts_and_lengths_are_read_as_redis_reads_them() {
        for bad in [
            &b"*x\r\n"[..],
            b"*\r\n",
            b"*01\r\n",
            b"* 1\r\n",
            b"*+1\r\n",
            b"*99999999999999999999\r\n",
        ] {
            assert_eq!(
                commands(bad).1,
                Err(ProtocolError::InvalidMultibulkLength),
                "{bad:?}"
            );
        }
        // More than the limit allows.
        assert_eq!(commands(b"*17\r\n").1, Err(ProtocolError::InvalidMultibulkLength));
        for bad in [
            &b"*1\r\n$x\r\n"[..],
            b"*1\r\n$-1\r\n",
            b"*1\r\n$1025\r\n",
            b"*1\r\n$\r\n",
        ] {
            assert_eq!(commands(bad).1, Err(ProtocolError::InvalidBulkLength), "{bad:?}");
        }
        assert_eq!(
            commands(b"*1\r\n*1\r\n").1,
            Err(ProtocolError::ExpectedDollar(b'*'))
        );
        assert_eq!(
            commands(b"*1\r\n:1\r\n").1,
            Err(ProtocolError::ExpectedDollar(b':'))
        );
    }

    #[test]
    fn a_bulk_length_of_two_to_the_63_is_refused_at_once() {
        let (found, error) = commands(b"*2\r\n$3\r\nGET\r\n$9223372036854775808\r\n");
        assert!(found.is_empty());
        assert_eq!(error, Err(ProtocolError::InvalidBulkLength));
        let limits = Limits {
            max_bulk: usize::MAX,
            ..LIMITS
        };
        let mut parser = Parser::default();
        let claim = b"*1\r\n$9223372036854775807\r\n";
        assert_eq!(
            parser.parse(claim, &limits),
            Err(ProtocolError::CommandTooLarge(LIMITS.max_command)),
            "a claim larger than a command may be is refused before its bytes come"
        );
    }

    #[test]
    fn lines_without_their_end_are_bounded() {
        let long = vec![b'a'; INLINE_MAX + 1];
        assert_eq!(commands(&long).1, Err(ProtocolError::TooBigInline));
        assert_eq!(commands(&long[..INLINE_MAX]).1, Ok(INLINE_MAX));
        let mut count = b"*".to_vec();
        count.extend(vec![b'1'; INLINE_MAX]);
        assert_eq!(commands(&count).1, Err(ProtocolError::TooBigCount));
        let limits = Limits {
            max_command: usize::MAX,
            ..LIMITS
        };
        let mut bulk = b"*1\r\n$".to_vec();
        bulk.extend(vec![b'1'; INLINE_MAX]);
        assert_eq!(
            Parser::default().parse(&bulk, &limits),
            Err(ProtocolError::TooBigBulkCount)
        );
    }

    #[test]
    fn a_command_over_its_size_limit_is_refused() {
        let mut big = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000\r\n".to_vec();
        let mut parser = Parser::default();
        let limits = Limits {
            max_command: 512,
            ..LIMITS
        };
        assert_eq!(
            parser.parse(&big, &limits),
            Err(ProtocolError::CommandTooLarge(512))
        );
        // Many small arguments add up as well.
        big = b"*16\r\n".to_vec();
        for _ in 0..15 {
            big.extend(b"$40\r\n");
            big.extend([b'x'; 40]);
            big.extend(b"\r\n");
        }
        assert_eq!(
            Parser::default().parse(&big, &limits),
            Err(ProtocolError::CommandTooLarge(512))
        );
    }

    #[test]
    fn errors_read_as_redis_writes_them() {
        assert_eq!(
            ProtocolError::ExpectedDollar(b'*').message(),
            b"Protocol error: expected '$', got '*'"
        );
        assert_eq!(
            ProtocolError::ExpectedDollar(b'\n').message(),
            b"Protocol error: expected '$', got ' '"
        );
        assert_eq!(
            ProtocolError::InvalidBulkLength.message(),
            b"Protocol error: invalid bulk length"
        );
    }

    #[test]
    fn string2ll_is_redis_s() {
        assert_eq!(string2ll(b"0"), Some(0));
        assert_eq!(string2ll(b"-1"), Some(-1));
        assert_eq!(string2ll(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(string2ll(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"9223372036854775808",
            b"1.5",
            b"0x1",
        ] {
            assert_eq!(string2ll(bad), None, "{bad:?}");
        }
        assert_eq!(string2ll(b"000000000000000000001"), None, "21 bytes");
    }
}
