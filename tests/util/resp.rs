//! Speaking RESP2 to a server from a test, and a real redis-server to
//! compare kv_server with.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::tools::{free_port, tool};
use super::{Process, TIMEOUT, connect};

/// `args` as a RESP array of bulk strings, as clients send commands.
pub fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend(format!("${}\r\n", arg.len()).bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A command written as words (`"SET k v"`), as a RESP array.
pub fn words(line: &str) -> Vec<u8> {
    let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
    command(&args)
}

/// A connection to a RESP server, reading whole replies.
pub struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Self {
        Client {
            reader: BufReader::new(connect(addr)),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.reader
            .get_mut()
            .write_all(bytes)
            .expect("send to the server");
    }

    /// The raw bytes of the next reply, whole (an array with all its
    /// elements).
    pub fn reply(&mut self) -> io::Result<Vec<u8>> {
        let mut raw = Vec::new();
        read_reply(&mut self.reader, &mut raw)?;
        Ok(raw)
    }

    /// Sends `bytes` and reads `count` replies.
    pub fn exchange(&mut self, bytes: &[u8], count: usize) -> Vec<u8> {
        self.send(bytes);
        let mut all = Vec::new();
        for _ in 0..count {
            let reply = self.reply().unwrap_or_else(|e| {
                panic!(
                    "no reply from {:?} to {:?}: {e}",
                    self.stream().peer_addr(),
                    String::from_utf8_lossy(bytes)
                )
            });
            all.extend(reply);
        }
        all
    }

    /// Sends `line` as a command and returns its reply.
    pub fn call(&mut self, line: &str) -> Vec<u8> {
        self.exchange(&words(line), 1)
    }

    /// Everything the server sends until it closes the connection (a
    /// time-out fails the test: the server did not close).
    pub fn until_closed(&mut self) -> Vec<u8> {
        super::read_until_closed(&mut self.reader)
    }

    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }
}

/// Reads one RESP2 reply into `raw`.
fn read_reply(reader: &mut impl BufRead, raw: &mut Vec<u8>) -> io::Result<()> {
    let start = raw.len();
    let n = reader.read_until(b'\n', raw)?;
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let line = std::str::from_utf8(&raw[start..start + n])
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "a reply line that is not text"))?
        .trim_end()
        .to_owned();
    let number = || {
        line[1..]
            .parse::<i64>()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("bad reply line {line:?}")))
    };
    match line.as_bytes().first() {
        Some(b'+' | b'-' | b':') => Ok(()),
        Some(b'$') => {
            let len = number()?;
            if len >= 0 {
                let mut data = vec![0; len as usize + 2];
                io::Read::read_exact(reader, &mut data)?;
                raw.extend(data);
            }
            Ok(())
        }
        Some(b'*') => {
            for _ in 0..number()?.max(0) {
                read_reply(reader, raw)?;
            }
            Ok(())
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a RESP reply: {line:?}"),
        )),
    }
}

/// A real redis-server on a free loopback port, in memory only (`--save
/// ''`, `--appendonly no`), stopped when dropped.
pub struct Redis {
    pub addr: SocketAddr,
    _process: Process,
    _dir: tempfile::TempDir,
}

impl Redis {
    /// Starts one and waits (bounded) until it answers PING. A missing
    /// redis-server fails the test, saying what to install.
    pub fn start() -> Redis {
        let server = tool("redis-server", "redis-server");
        let dir = tempfile::tempdir().unwrap();
        // The port is free now; should another program take it before
        // redis-server binds, the wait below fails the test clearly.
        let port = free_port();
        let process = Process::spawn(
            Command::new(server)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
                .args(["--appendonly", "no", "--daemonize", "no", "--dir"])
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                stream.set_read_timeout(Some(TIMEOUT)).unwrap();
                let mut client = Client {
                    reader: BufReader::new(stream),
                };
                client.send(b"PING\r\n");
                if client.reply().is_ok_and(|reply| reply == b"+PONG\r\n") {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not answer on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis {
            addr,
            _process: process,
            _dir: dir,
        }
    }
}
