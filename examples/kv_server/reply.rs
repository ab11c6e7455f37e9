//! Writing RESP2 replies, byte for byte as Redis writes them, into the
//! buffer that collects a batch of replies (sent in one write).

/// `+OK`.
pub fn ok(out: &mut Vec<u8>) {
    out.extend_from_slice(b"+OK\r\n");
}

/// A status reply: `+TEXT`.
pub fn status(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'+');
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

/// An error reply: `-ERR MESSAGE`, or the message as it is when it names
/// its own code (`-WRONGTYPE ...`). Line breaks in it become spaces, as
/// Redis makes them (a message may quote what a client sent).
pub fn error(out: &mut Vec<u8>, message: &[u8]) {
    if message.first() != Some(&b'-') {
        out.extend_from_slice(b"-ERR ");
    }
    out.extend(
        message
            .iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

/// An integer reply: `:N`.
pub fn integer(out: &mut Vec<u8>, n: i64) {
    out.push(b':');
    decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

/// A bulk string: `$LEN` and the bytes.
pub fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'$');
    decimal(out, bytes.len() as i64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// The null bulk string: `$-1` (a missing key).
pub fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(b"$-1\r\n");
}

/// An array's header: `*N`, its elements to follow.
pub fn array(out: &mut Vec<u8>, len: usize) {
    out.push(b'*');
    decimal(out, len as i64);
    out.extend_from_slice(b"\r\n");
}

/// `n` in decimal.
pub fn decimal(out: &mut Vec<u8>, n: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        f(&mut out);
        out
    }

    #[test]
    fn replies_are_redis_bytes() {
        assert_eq!(written(|o| integer(o, 0)), b":0\r\n");
        assert_eq!(written(|o| integer(o, i64::MIN)), b":-9223372036854775808\r\n");
        assert_eq!(written(|o| integer(o, i64::MAX)), b":9223372036854775807\r\n");
        assert_eq!(written(|o| bulk(o, b"")), b"$0\r\n\r\n");
        assert_eq!(written(|o| bulk(o, b"a\r\nb")), b"$4\r\na\r\nb\r\n");
        assert_eq!(written(null), b"$-1\r\n");
        assert_eq!(written(|o| array(o, 2)), b"*2\r\n");
        assert_eq!(written(|o| error(o, b"syntax error")), b"-ERR syntax error\r\n");
        assert_eq!(written(|o| error(o, b"-WRONGTYPE x\ny")), b"-WRONGTYPE x y\r\n");
    }
}
