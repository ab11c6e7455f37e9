//! The commands, with Redis's replies and error strings, checked in the
//! same order Redis checks them (command name, arity, options, numbers,
//! then the data), so a client sees what Redis would have said.
//!
//! Values are strings only, so no command meets a value of another type
//! (Redis's `WRONGTYPE`). There is one database, 0.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::reply;
use crate::resp::{Args, string2ll};
use crate::store::{Entry, Millis, Store, now_ms};

/// What a connection keeps between its commands.
#[derive(Debug, Default)]
pub struct Session {
    /// `CLIENT ID`.
    pub id: u64,
    /// `CLIENT SETNAME`.
    pub name: Option<Vec<u8>>,
}

impl Session {
    /// A new connection's session, with the next id.
    pub fn new() -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Session {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name: None,
        }
    }
}

/// What the connection does after a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    /// Reads on.
    Continue,
    /// Closes once the replies so far are sent (`QUIT`).
    Quit,
    /// Closes without another word: the "command" was the start of an
    /// HTTP request (`POST`, `Host:`), as a browser tricked into talking
    /// to the server sends (Redis closes such connections too).
    Refuse,
}

/// The server's fixed settings a command may need.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// The largest string a value may grow to (`APPEND`).
    pub max_bulk: usize,
}

/// A command: its name, arity (Redis's: `n` exactly `n` arguments with
/// the name, `-n` at least `n`) and what `COMMAND` says of it.
struct Command {
    name: &'static str,
    /// Its name in messages: `config|get` for a subcommand.
    full: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    /// First key, last key (-1: the last argument), step; 0 0 0 for none.
    keys: (i32, i32, i32),
    categories: &'static [&'static str],
    run: fn(&mut Call<'_, '_>),
    subcommands: &'static [Command],
}

const WRITE: &[&str] = &["write", "denyoom"];
const WRITE_FAST: &[&str] = &["write", "denyoom", "fast"];
const DELETE: &[&str] = &["write"];
const DELETE_FAST: &[&str] = &["write", "fast"];
const READ_FAST: &[&str] = &["readonly", "fast"];
const READ: &[&str] = &["readonly"];
const FAST: &[&str] = &["fast"];
const ADMIN: &[&str] = &["admin", "noscript", "loading", "stale"];
const CONNECTION: &[&str] = &["noscript", "loading", "stale", "fast"];

const STRING_WRITE: &[&str] = &["@write", "@string"];
const STRING_WRITE_FAST: &[&str] = &["@write", "@string", "@fast"];
const STRING_READ_FAST: &[&str] = &["@read", "@string", "@fast"];
const KEYSPACE_WRITE: &[&str] = &["@keyspace", "@write", "@slow"];
const KEYSPACE_WRITE_FAST: &[&str] = &["@keyspace", "@write", "@fast"];
const KEYSPACE_READ_FAST: &[&str] = &["@keyspace", "@read", "@fast"];
const KEYSPACE_READ_SLOW: &[&str] = &["@keyspace", "@read", "@slow", "@dangerous"];
const KEYSPACE_DANGEROUS: &[&str] = &["@keyspace", "@write", "@slow", "@dangerous"];
const CONNECTION_FAST: &[&str] = &["@fast", "@connection"];
const CONNECTION_SLOW: &[&str] = &["@slow", "@connection"];
const ADMIN_SLOW: &[&str] = &["@admin", "@slow", "@dangerous"];

macro_rules! command {
    ($name:literal, $arity:expr, $flags:expr, $keys:expr, $categories:expr, $run:expr) => {
        command!($name, $name, $arity, $flags, $keys, $categories, $run, &[])
    };
    ($name:literal, $full:literal, $arity:expr, $flags:expr, $keys:expr, $categories:expr, $run:expr, $subcommands:expr) => {
        Command {
            name: $name,
            full: $full,
            arity: $arity,
            flags: $flags,
            keys: $keys,
            categories: $categories,
            run: $run,
            subcommands: $subcommands,
        }
    };
}

/// A subcommand (`CONFIG GET`): its own name, its name in messages.
macro_rules! subcommand {
    ($name:literal, $full:literal, $arity:expr, $flags:expr, $categories:expr, $run:expr) => {
        command!($name, $full, $arity, $flags, (0, 0, 0), $categories, $run, &[])
    };
}

/// Every command, the benchmark's first.
static COMMANDS: &[Command] = &[
    command!("set", -3, WRITE, (1, 1, 1), STRING_WRITE, set),
    command!("get", 2, READ_FAST, (1, 1, 1), STRING_READ_FAST, get),
    command!("getset", 3, WRITE_FAST, (1, 1, 1), STRING_WRITE_FAST, getset),
    command!("del", -2, DELETE, (1, -1, 1), KEYSPACE_WRITE, del),
    command!("exists", -2, READ_FAST, (1, -1, 1), KEYSPACE_READ_FAST, exists),
    command!("incr", 2, WRITE_FAST, (1, 1, 1), STRING_WRITE_FAST, incr),
    command!("incrby", 3, WRITE_FAST, (1, 1, 1), STRING_WRITE_FAST, incrby),
    command!("decr", 2, WRITE_FAST, (1, 1, 1), STRING_WRITE_FAST, decr),
    command!("decrby", 3, WRITE_FAST, (1, 1, 1), STRING_WRITE_FAST, decrby),
    command!("mget", -2, READ_FAST, (1, -1, 1), STRING_READ_FAST, mget),
    command!("mset", -3, WRITE, (1, -1, 2), STRING_WRITE, mset),
    command!("append", 3, WRITE_FAST, (1, 1, 1), STRING_WRITE_FAST, append),
    command!("strlen", 2, READ_FAST, (1, 1, 1), STRING_READ_FAST, strlen),
    command!("expire", -3, DELETE_FAST, (1, 1, 1), KEYSPACE_WRITE_FAST, expire),
    command!(
        "pexpire",
        -3,
        DELETE_FAST,
        (1, 1, 1),
        KEYSPACE_WRITE_FAST,
        pexpire
    ),
    command!(
        "expireat",
        -3,
        DELETE_FAST,
        (1, 1, 1),
        KEYSPACE_WRITE_FAST,
        expireat
    ),
    command!(
        "pexpireat",
        -3,
        DELETE_FAST,
        (1, 1, 1),
        KEYSPACE_WRITE_FAST,
        pexpireat
    ),
    command!("ttl", 2, READ_FAST, (1, 1, 1), KEYSPACE_READ_FAST, ttl),
    command!("pttl", 2, READ_FAST, (1, 1, 1), KEYSPACE_READ_FAST, pttl),
    command!("persist", 2, DELETE_FAST, (1, 1, 1), KEYSPACE_WRITE_FAST, persist),
    command!("dbsize", 1, READ_FAST, (0, 0, 0), KEYSPACE_READ_FAST, dbsize),
    command!("flushdb", -1, DELETE, (0, 0, 0), KEYSPACE_DANGEROUS, flush),
    command!("flushall", -1, DELETE, (0, 0, 0), KEYSPACE_DANGEROUS, flush),
    command!("keys", 2, READ, (0, 0, 0), KEYSPACE_READ_SLOW, keys),
    command!("select", 2, CONNECTION, (0, 0, 0), CONNECTION_FAST, select),
    command!("ping", -1, FAST, (0, 0, 0), CONNECTION_FAST, ping),
    command!("echo", 2, FAST, (0, 0, 0), CONNECTION_FAST, echo),
    command!("quit", -1, CONNECTION, (0, 0, 0), CONNECTION_FAST, quit),
    command!(
        "config",
        "config",
        -2,
        &[],
        (0, 0, 0),
        &["@slow"],
        container,
        &[subcommand!(
            "get",
            "config|get",
            -3,
            ADMIN,
            ADMIN_SLOW,
            config_get
        )]
    ),
    command!(
        "command",
        "command",
        -1,
        CONNECTION,
        (0, 0, 0),
        CONNECTION_SLOW,
        command_all,
        &[
            subcommand!(
                "count",
                "command|count",
                2,
                CONNECTION,
                CONNECTION_SLOW,
                command_count
            ),
            subcommand!(
                "docs",
                "command|docs",
                -2,
                CONNECTION,
                CONNECTION_SLOW,
                command_docs
            ),
            subcommand!(
                "info",
                "command|info",
                -2,
                CONNECTION,
                CONNECTION_SLOW,
                command_info
            ),
        ]
    ),
    command!(
        "client",
        "client",
        -2,
        &[],
        (0, 0, 0),
        &["@slow"],
        container,
        &[
            subcommand!("id", "client|id", 2, CONNECTION, CONNECTION_SLOW, client_id),
            subcommand!(
                "getname",
                "client|getname",
                2,
                CONNECTION,
                CONNECTION_SLOW,
                client_getname
            ),
            subcommand!(
                "setname",
                "client|setname",
                3,
                CONNECTION,
                CONNECTION_SLOW,
                client_setname
            ),
        ]
    ),
];

/// The configuration `CONFIG GET` shows: a store kept in memory only, as
/// a redis-server started with `--save '' --appendonly no`.
const CONFIG: &[(&str, &str)] = &[("save", ""), ("appendonly", "no"), ("databases", "1")];

/// Runs the command in `args`, its replies appended to `out`.
pub fn run(
    store: &Store,
    settings: &Settings,
    session: &mut Session,
    args: Args<'_>,
    out: &mut Vec<u8>,
) -> After {
    let name = args.get(0);
    // Redis's answer to a cross-protocol attack: an HTTP request sent to
    // it line by line is refused at its first line, unanswered.
    if name.eq_ignore_ascii_case(b"post") || name.eq_ignore_ascii_case(b"host:") {
        return After::Refuse;
    }
    if name.eq_ignore_ascii_case(b"hello") {
        // Redis 5 had no HELLO: clients asking for RESP3 take its error
        // as "RESP2 only" and go on in RESP2.
        reply::error(out, &unknown_command_redis5(args));
        return After::Continue;
    }
    let Some(mut command) = find(COMMANDS, name) else {
        reply::error(out, &unknown_command(args));
        return After::Continue;
    };
    if !command.subcommands.is_empty() && args.len() >= 2 {
        match find(command.subcommands, args.get(1)) {
            Some(sub) => command = sub,
            None => {
                reply::error(out, &unknown_subcommand(args));
                return After::Continue;
            }
        }
    }
    let argc = args.len() as i64;
    let arity = i64::from(command.arity);
    if (arity > 0 && arity != argc) || argc < -arity {
        arity_error(out, command.full);
        return After::Continue;
    }
    let mut call = Call {
        args,
        store,
        settings,
        session,
        out,
        command,
        after: After::Continue,
    };
    (command.run)(&mut call);
    call.after
}

fn find<'t>(table: &'t [Command], name: &[u8]) -> Option<&'t Command> {
    table.iter().find(|command| {
        command.name.len() == name.len() && command.name.as_bytes().eq_ignore_ascii_case(name)
    })
}

/// What C's `%.Ns` prints of an argument: up to its first NUL, at most
/// `n` bytes.
fn c_string(arg: &[u8], n: usize) -> &[u8] {
    let end = arg.iter().position(|&b| b == 0).unwrap_or(arg.len());
    &arg[..end.min(n)]
}

/// Redis 7's error for an unknown command: the name and the first
/// arguments, quoted, up to about 128 bytes of them.
fn unknown_command(args: Args<'_>) -> Vec<u8> {
    let mut quoted = Vec::new();
    for arg in args.iter().skip(1) {
        if quoted.len() >= 128 {
            break;
        }
        let room = 128 - quoted.len();
        quoted.push(b'\'');
        quoted.extend_from_slice(c_string(arg, room));
        quoted.extend_from_slice(b"' ");
    }
    let mut message = b"unknown command '".to_vec();
    message.extend_from_slice(c_string(args.get(0), 128));
    message.extend_from_slice(b"', with args beginning with: ");
    message.extend_from_slice(&quoted);
    message
}

/// Redis 5's error for an unknown command (backquotes, commas).
fn unknown_command_redis5(args: Args<'_>) -> Vec<u8> {
    let mut quoted = Vec::new();
    for arg in args.iter().skip(1) {
        if quoted.len() >= 128 {
            break;
        }
        let room = 128 - quoted.len();
        quoted.push(b'`');
        quoted.extend_from_slice(c_string(arg, room));
        quoted.extend_from_slice(b"`, ");
    }
    let mut message = b"unknown command `".to_vec();
    message.extend_from_slice(c_string(args.get(0), usize::MAX));
    message.extend_from_slice(b"`, with args beginning with: ");
    message.extend_from_slice(&quoted);
    message
}

fn unknown_subcommand(args: Args<'_>) -> Vec<u8> {
    let mut message = b"unknown subcommand '".to_vec();
    message.extend_from_slice(c_string(args.get(1), 128));
    message.extend_from_slice(b"'. Try ");
    message.extend(c_string(args.get(0), usize::MAX).to_ascii_uppercase());
    message.extend_from_slice(b" HELP.");
    message
}

fn arity_error(out: &mut Vec<u8>, full: &str) {
    reply::error(
        out,
        format!("wrong number of arguments for '{full}' command").as_bytes(),
    );
}

const NOT_AN_INTEGER: &[u8] = b"value is not an integer or out of range";
const SYNTAX_ERROR: &[u8] = b"syntax error";

/// One command being run.
struct Call<'a, 'o> {
    args: Args<'a>,
    store: &'a Store,
    settings: &'a Settings,
    session: &'a mut Session,
    out: &'o mut Vec<u8>,
    command: &'static Command,
    after: After,
}

impl<'a> Call<'a, '_> {
    fn arg(&self, i: usize) -> &'a [u8] {
        self.args.get(i)
    }

    fn error(&mut self, message: &[u8]) {
        reply::error(self.out, message);
    }

    /// Argument `i` as Redis's `getLongLongFromObjectOrReply` reads it;
    /// `None` once the error is replied.
    fn integer_arg(&mut self, i: usize) -> Option<i64> {
        let value = string2ll(self.arg(i));
        if value.is_none() {
            self.error(NOT_AN_INTEGER);
        }
        value
    }

    fn expire_time_error(&mut self) {
        let message = format!("invalid expire time in '{}' command", self.command.full);
        self.error(message.as_bytes());
    }

    fn bulk_or_null(&mut self, value: Option<&[u8]>) {
        match value {
            Some(value) => reply::bulk(self.out, value),
            None => reply::null(self.out),
        }
    }

    /// The keys of a command on several: every argument from the first on,
    /// `step` apart.
    fn keys(&self, step: usize) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.args.iter().skip(1).step_by(step)
    }
}

fn eq(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

// --- strings ---------------------------------------------------------------

/// `SET`'s options (Redis's `OBJ_SET_*` flags).
#[derive(Clone, Copy, Default)]
struct SetOptions {
    nx: bool,
    xx: bool,
    get: bool,
    keep_ttl: bool,
    ex: bool,
    px: bool,
    exat: bool,
    pxat: bool,
}

fn set(call: &mut Call<'_, '_>) {
    let mut o = SetOptions::default();
    let mut expire: Option<&[u8]> = None;
    let argc = call.args.len();
    let mut j = 3;
    while j < argc {
        let opt = call.arg(j);
        let has_next = j + 1 < argc;
        if eq(opt, "nx") && !o.xx {
            o.nx = true;
        } else if eq(opt, "xx") && !o.nx {
            o.xx = true;
        } else if eq(opt, "get") {
            o.get = true;
        } else if eq(opt, "keepttl") && !o.ex && !o.exat && !o.px && !o.pxat {
            o.keep_ttl = true;
        } else if eq(opt, "ex") && !o.keep_ttl && !o.exat && !o.px && !o.pxat && has_next {
            o.ex = true;
            expire = Some(call.arg(j + 1));
            j += 1;
        } else if eq(opt, "px") && !o.keep_ttl && !o.ex && !o.exat && !o.pxat && has_next {
            o.px = true;
            expire = Some(call.arg(j + 1));
            j += 1;
        } else if eq(opt, "exat") && !o.keep_ttl && !o.ex && !o.px && !o.pxat && has_next {
            o.exat = true;
            expire = Some(call.arg(j + 1));
            j += 1;
        } else if eq(opt, "pxat") && !o.keep_ttl && !o.ex && !o.exat && !o.px && has_next {
            o.pxat = true;
            expire = Some(call.arg(j + 1));
            j += 1;
        } else {
            call.error(SYNTAX_ERROR);
            return;
        }
        j += 1;
    }
    let now = now_ms();
    let expires_at = match expire {
        None => None,
        Some(arg) => match set_expiry(arg, o.ex || o.exat, o.ex || o.px, now) {
            Ok(at) => Some(at),
            Err(Invalid::NotAnInteger) => return call.error(NOT_AN_INTEGER),
            Err(Invalid::ExpireTime) => return call.expire_time_error(),
        },
    };
    let (key, value) = (call.arg(1), call.arg(2));
    let mut shard = call.store.lock(key);
    let old = shard.get(key, now);
    let found = old.is_some();
    let old_expiry = old.as_ref().and_then(|e| e.expires_at);
    if o.get {
        let old_value = old.map(|e| &e.value[..]);
        call.bulk_or_null(old_value);
    }
    if (o.nx && found) || (o.xx && !found) {
        if !o.get {
            reply::null(call.out);
        }
        return;
    }
    let kept = if o.keep_ttl { old_expiry } else { None };
    shard.insert(
        key,
        Entry {
            value: value.to_vec(),
            expires_at: expires_at.or(kept),
        },
    );
    if !o.get {
        reply::ok(call.out);
    }
}

/// Why an expiry time was refused.
enum Invalid {
    NotAnInteger,
    ExpireTime,
}

/// `SET`'s expiry time from its argument, as Redis's
/// `getExpireMillisecondsOrReply` computes it.
fn set_expiry(arg: &[u8], seconds: bool, relative: bool, now: Millis) -> Result<Millis, Invalid> {
    let value = string2ll(arg).ok_or(Invalid::NotAnInteger)?;
    if value <= 0 || (seconds && value > i64::MAX / 1000) {
        return Err(Invalid::ExpireTime);
    }
    let mut at = if seconds { value * 1000 } else { value };
    if relative {
        // Redis's sum wraps around and is then caught as not positive.
        at = at.wrapping_add(now);
    }
    if at <= 0 {
        return Err(Invalid::ExpireTime);
    }
    Ok(at)
}

fn get(call: &mut Call<'_, '_>) {
    let key = call.arg(1);
    let mut shard = call.store.lock(key);
    match shard.get(key, now_ms()) {
        Some(entry) => reply::bulk(call.out, &entry.value),
        None => reply::null(call.out),
    }
}

fn getset(call: &mut Call<'_, '_>) {
    let (key, value) = (call.arg(1), call.arg(2));
    let mut shard = call.store.lock(key);
    match shard.get(key, now_ms()) {
        Some(entry) => reply::bulk(call.out, &entry.value),
        None => reply::null(call.out),
    }
    shard.insert(key, Entry::new(value.to_vec()));
}

fn incr(call: &mut Call<'_, '_>) {
    incr_by(call, 1);
}

fn decr(call: &mut Call<'_, '_>) {
    incr_by(call, -1);
}

fn incrby(call: &mut Call<'_, '_>) {
    if let Some(by) = call.integer_arg(2) {
        incr_by(call, by);
    }
}

fn decrby(call: &mut Call<'_, '_>) {
    let Some(by) = call.integer_arg(2) else {
        return;
    };
    if by == i64::MIN {
        return call.error(b"decrement would overflow");
    }
    incr_by(call, -by);
}

/// Adds `by` to the integer at the key (0 if there is none), keeping its
/// expiry time.
fn incr_by(call: &mut Call<'_, '_>, by: i64) {
    let key = call.arg(1);
    let mut shard = call.store.lock(key);
    let entry = shard.get(key, now_ms());
    let old = match &entry {
        None => 0,
        Some(entry) => match string2ll(&entry.value) {
            Some(old) => old,
            None => return call.error(NOT_AN_INTEGER),
        },
    };
    if (by < 0 && old < 0 && by < i64::MIN - old) || (by > 0 && old > 0 && by > i64::MAX - old) {
        return call.error(b"increment or decrement would overflow");
    }
    let new = old + by;
    let mut digits = Vec::with_capacity(20);
    reply::decimal(&mut digits, new);
    match entry {
        Some(entry) => entry.value = digits,
        None => shard.insert(key, Entry::new(digits)),
    }
    reply::integer(call.out, new);
}

fn mget(call: &mut Call<'_, '_>) {
    let now = now_ms();
    let mut locked = call.store.lock_all(call.keys(1));
    reply::array(call.out, call.args.len() - 1);
    for key in call.args.iter().skip(1) {
        match locked.shard(key).get(key, now) {
            Some(entry) => reply::bulk(call.out, &entry.value),
            None => reply::null(call.out),
        }
    }
}

fn mset(call: &mut Call<'_, '_>) {
    if call.args.len().is_multiple_of(2) {
        return arity_error(call.out, call.command.full);
    }
    let mut locked = call.store.lock_all(call.keys(2));
    for i in (1..call.args.len()).step_by(2) {
        let (key, value) = (call.arg(i), call.arg(i + 1));
        locked.shard(key).insert(key, Entry::new(value.to_vec()));
    }
    reply::ok(call.out);
}

fn append(call: &mut Call<'_, '_>) {
    let (key, more) = (call.arg(1), call.arg(2));
    let max = call.settings.max_bulk;
    let mut shard = call.store.lock(key);
    let length = match shard.get(key, now_ms()) {
        None => {
            shard.insert(key, Entry::new(more.to_vec()));
            more.len()
        }
        Some(entry) => {
            if entry.value.len() + more.len() > max {
                return call.error(b"string exceeds maximum allowed size (proto-max-bulk-len)");
            }
            entry.value.extend_from_slice(more);
            entry.value.len()
        }
    };
    reply::integer(call.out, length as i64);
}

fn strlen(call: &mut Call<'_, '_>) {
    let key = call.arg(1);
    let length = call
        .store
        .lock(key)
        .get(key, now_ms())
        .map_or(0, |e| e.value.len());
    reply::integer(call.out, length as i64);
}

// --- keys --------------------------------------------------------------------

fn del(call: &mut Call<'_, '_>) {
    let now = now_ms();
    let mut locked = call.store.lock_all(call.keys(1));
    let mut deleted = 0;
    for key in call.args.iter().skip(1) {
        let shard = locked.shard(key);
        if shard.contains(key, now) {
            shard.remove(key);
            deleted += 1;
        }
    }
    reply::integer(call.out, deleted);
}

fn exists(call: &mut Call<'_, '_>) {
    let now = now_ms();
    let mut locked = call.store.lock_all(call.keys(1));
    let found = call
        .args
        .iter()
        .skip(1)
        .filter(|key| locked.shard(key).contains(key, now))
        .count();
    reply::integer(call.out, found as i64);
}

fn expire(call: &mut Call<'_, '_>) {
    expire_generic(call, true, true);
}

fn pexpire(call: &mut Call<'_, '_>) {
    expire_generic(call, false, true);
}

fn expireat(call: &mut Call<'_, '_>) {
    expire_generic(call, true, false);
}

fn pexpireat(call: &mut Call<'_, '_>) {
    expire_generic(call, false, false);
}

/// `EXPIRE` and its kin, as Redis's `expireGenericCommand`: options
/// first, then the number, then the key.
fn expire_generic(call: &mut Call<'_, '_>, seconds: bool, relative: bool) {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for j in 3..call.args.len() {
        let opt = call.arg(j);
        if eq(opt, "nx") {
            nx = true;
        } else if eq(opt, "xx") {
            xx = true;
        } else if eq(opt, "gt") {
            gt = true;
        } else if eq(opt, "lt") {
            lt = true;
        } else {
            let mut message = b"Unsupported option ".to_vec();
            message.extend_from_slice(c_string(opt, usize::MAX));
            return call.error(&message);
        }
    }
    if nx && (xx || gt || lt) {
        return call.error(b"NX and XX, GT or LT options at the same time are not compatible");
    }
    if gt && lt {
        return call.error(b"GT and LT options at the same time are not compatible");
    }
    let Some(mut when) = call.integer_arg(2) else {
        return;
    };
    let now = now_ms();
    let base = if relative { now } else { 0 };
    if seconds {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            return call.expire_time_error();
        }
        when *= 1000;
    }
    if when > i64::MAX - base {
        return call.expire_time_error();
    }
    when += base;
    let key = call.arg(1);
    let mut shard = call.store.lock(key);
    let Some(entry) = shard.get(key, now) else {
        return reply::integer(call.out, 0);
    };
    let current = entry.expires_at;
    let refused = (nx && current.is_some())
        || (xx && current.is_none())
        || (gt && current.is_none_or(|current| when <= current))
        || (lt && current.is_some_and(|current| when >= current));
    if refused {
        return reply::integer(call.out, 0);
    }
    if when <= now {
        shard.remove(key);
    } else {
        shard.set_expiry(key, Some(when), now);
    }
    reply::integer(call.out, 1);
}

fn ttl(call: &mut Call<'_, '_>) {
    ttl_generic(call, false);
}

fn pttl(call: &mut Call<'_, '_>) {
    ttl_generic(call, true);
}

fn ttl_generic(call: &mut Call<'_, '_>, millis: bool) {
    let key = call.arg(1);
    let now = now_ms();
    let left = match call.store.lock(key).get(key, now) {
        None => -2,
        Some(Entry { expires_at: None, .. }) => -1,
        Some(Entry {
            expires_at: Some(at), ..
        }) => {
            let left = (*at - now).max(0);
            if millis { left } else { (left + 500) / 1000 }
        }
    };
    reply::integer(call.out, left);
}

fn persist(call: &mut Call<'_, '_>) {
    let key = call.arg(1);
    let now = now_ms();
    let mut shard = call.store.lock(key);
    let had_expiry = shard.get(key, now).is_some_and(|e| e.expires_at.is_some());
    if had_expiry {
        shard.set_expiry(key, None, now);
    }
    reply::integer(call.out, i64::from(had_expiry));
}

fn dbsize(call: &mut Call<'_, '_>) {
    reply::integer(call.out, call.store.len() as i64);
}

fn flush(call: &mut Call<'_, '_>) {
    let argc = call.args.len();
    let option_ok = argc == 1 || (argc == 2 && (eq(call.arg(1), "sync") || eq(call.arg(1), "async")));
    if !option_ok {
        return call.error(SYNTAX_ERROR);
    }
    call.store.clear();
    reply::ok(call.out);
}

fn keys(call: &mut Call<'_, '_>) {
    let pattern = call.arg(1);
    let mut found = Vec::new();
    let mut count = 0;
    call.store.keys_matching(pattern, now_ms(), |key| {
        reply::bulk(&mut found, key);
        count += 1;
    });
    reply::array(call.out, count);
    call.out.extend_from_slice(&found);
}

// --- connection and server ---------------------------------------------------

fn select(call: &mut Call<'_, '_>) {
    let Some(index) = call.integer_arg(1) else {
        return;
    };
    if index < i64::from(i32::MIN) || index > i64::from(i32::MAX) {
        return call.error(b"value is out of range, value must between -2147483648 and 2147483647");
    }
    match index {
        0 => reply::ok(call.out),
        _ => call.error(b"DB index is out of range"),
    }
}

fn ping(call: &mut Call<'_, '_>) {
    match call.args.len() {
        1 => reply::status(call.out, b"PONG"),
        2 => reply::bulk(call.out, call.arg(1)),
        _ => arity_error(call.out, call.command.full),
    }
}

fn echo(call: &mut Call<'_, '_>) {
    reply::bulk(call.out, call.arg(1));
}

fn quit(call: &mut Call<'_, '_>) {
    reply::ok(call.out);
    call.after = After::Quit;
}

/// A container command (`CONFIG`, `CLIENT`) without its subcommand: the
/// arity check has answered already.
fn container(call: &mut Call<'_, '_>) {
    arity_error(call.out, call.command.full);
}

fn config_get(call: &mut Call<'_, '_>) {
    // The name each match is shown under: as asked, for an exact name
    // (Redis answers `CONFIG GET SAVE` with `SAVE`); its own, for a glob.
    let mut found: Vec<(usize, &[u8])> = Vec::new();
    for pattern in call.args.iter().skip(2) {
        let glob = pattern.iter().any(|b| matches!(b, b'[' | b'*' | b'?'));
        for (i, (name, _)) in CONFIG.iter().enumerate() {
            if found.iter().any(|(seen, _)| *seen == i) {
                continue;
            }
            if glob && crate::glob::matches(pattern, name.as_bytes(), true) {
                found.push((i, name.as_bytes()));
            } else if !glob && pattern.eq_ignore_ascii_case(name.as_bytes()) {
                found.push((i, pattern));
            }
        }
    }
    reply::array(call.out, found.len() * 2);
    for (i, shown) in found {
        reply::bulk(call.out, shown);
        reply::bulk(call.out, CONFIG[i].1.as_bytes());
    }
}

/// A command's entry in `COMMAND`'s reply: Redis 7's ten fields.
fn command_entry(out: &mut Vec<u8>, command: &Command) {
    reply::array(out, 10);
    reply::bulk(out, command.full.as_bytes());
    reply::integer(out, i64::from(command.arity));
    reply::array(out, command.flags.len());
    for flag in command.flags {
        reply::status(out, flag.as_bytes());
    }
    let (first, last, step) = command.keys;
    for n in [first, last, step] {
        reply::integer(out, i64::from(n));
    }
    reply::array(out, command.categories.len());
    for category in command.categories {
        reply::status(out, category.as_bytes());
    }
    // Tips and key specifications: none given.
    reply::array(out, 0);
    reply::array(out, 0);
    reply::array(out, command.subcommands.len());
    for sub in command.subcommands {
        command_entry(out, sub);
    }
}

fn command_all(call: &mut Call<'_, '_>) {
    reply::array(call.out, COMMANDS.len());
    for command in COMMANDS {
        command_entry(call.out, command);
    }
}

fn command_count(call: &mut Call<'_, '_>) {
    reply::integer(call.out, COMMANDS.len() as i64);
}

/// No documentation is served: redis-cli then has no hints, and works.
fn command_docs(call: &mut Call<'_, '_>) {
    reply::array(call.out, 0);
}

fn command_info(call: &mut Call<'_, '_>) {
    reply::array(call.out, call.args.len() - 2);
    for name in call.args.iter().skip(2) {
        match find(COMMANDS, name) {
            Some(command) => command_entry(call.out, command),
            None => reply::null(call.out),
        }
    }
}

fn client_id(call: &mut Call<'_, '_>) {
    reply::integer(call.out, call.session.id as i64);
}

fn client_getname(call: &mut Call<'_, '_>) {
    let name = call.session.name.clone();
    call.bulk_or_null(name.as_deref());
}

fn client_setname(call: &mut Call<'_, '_>) {
    let name = call.arg(2);
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return call.error(b"Client names cannot contain spaces, newlines or special characters.");
    }
    call.session.name = (!name.is_empty()).then(|| name.to_vec());
    reply::ok(call.out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::{Limits, Parser, Step};

    const LIMITS: Limits = Limits {
        max_bulk: 1 << 20,
        max_args: 1024,
        max_command: 1 << 21,
    };

    /// The replies of the inline commands in `script`, run in turn.
    fn replies(store: &Store, script: &str) -> String {
        let mut session = Session::new();
        let settings = Settings { max_bulk: 16 };
        let mut out = Vec::new();
        for line in script.lines() {
            let input = format!("{line}\r\n");
            let mut parser = Parser::default();
            match parser.parse(input.as_bytes(), &LIMITS).unwrap() {
                Step::Command(_) => {
                    run(
                        store,
                        &settings,
                        &mut session,
                        parser.args(input.as_bytes()),
                        &mut out,
                    );
                }
                other => panic!("{line:?}: {other:?}"),
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn set_and_get_with_their_options() {
        let store = Store::new();
        assert_eq!(replies(&store, "SET k v\nGET k"), "+OK\r\n$1\r\nv\r\n");
        assert_eq!(
            replies(&store, "SET k w NX\nSET k w XX GET"),
            "$-1\r\n$1\r\nv\r\n"
        );
        assert_eq!(replies(&store, "SET n 1 NX GET\nGET n"), "$-1\r\n$1\r\n1\r\n");
        assert_eq!(replies(&store, "SET k v NX XX"), "-ERR syntax error\r\n");
        assert_eq!(replies(&store, "SET k v EX"), "-ERR syntax error\r\n");
        assert_eq!(replies(&store, "SET k v EX 10 PX 10"), "-ERR syntax error\r\n");
        assert_eq!(
            replies(&store, "SET k v EX 0"),
            "-ERR invalid expire time in 'set' command\r\n"
        );
        assert_eq!(
            replies(&store, "SET k v EX x"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(replies(&store, "SET k v EX 100\nTTL k"), "+OK\r\n:100\r\n");
        assert_eq!(replies(&store, "SET k v2 KEEPTTL\nTTL k"), "+OK\r\n:100\r\n");
        assert_eq!(replies(&store, "SET k v3\nTTL k"), "+OK\r\n:-1\r\n");
    }

    #[test]
    fn counters_and_their_errors() {
        let store = Store::new();
        assert_eq!(
            replies(&store, "INCR c\nINCRBY c 10\nDECR c\nDECRBY c 5"),
            ":1\r\n:11\r\n:10\r\n:5\r\n"
        );
        assert_eq!(
            replies(&store, "SET c 9223372036854775807\nINCR c"),
            "+OK\r\n-ERR increment or decrement would overflow\r\n"
        );
        assert_eq!(
            replies(&store, "DECRBY c -9223372036854775808"),
            "-ERR decrement would overflow\r\n"
        );
        assert_eq!(
            replies(&store, "SET c x\nINCR c"),
            "+OK\r\n-ERR value is not an integer or out of range\r\n"
        );
    }

    #[test]
    fn several_keys_at_once() {
        let store = Store::new();
        assert_eq!(
            replies(
                &store,
                "MSET a 1 b 2\nMGET a nope b\nEXISTS a a nope\nDEL a a b nope"
            ),
            "+OK\r\n*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n:2\r\n:2\r\n"
        );
        assert_eq!(
            replies(&store, "MSET a"),
            "-ERR wrong number of arguments for 'mset' command\r\n"
        );
        assert_eq!(
            replies(&store, "MSET a 1 b"),
            "-ERR wrong number of arguments for 'mset' command\r\n"
        );
    }

    #[test]
    fn append_stops_at_the_bulk_limit() {
        let store = Store::new();
        assert_eq!(replies(&store, "APPEND s 0123456789\nSTRLEN s"), ":10\r\n:10\r\n");
        assert_eq!(
            replies(&store, "APPEND s 0123456"),
            "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"
        );
    }

    #[test]
    fn expiry_times() {
        let store = Store::new();
        assert_eq!(
            replies(&store, "EXPIRE none 10\nTTL none\nPTTL none"),
            ":0\r\n:-2\r\n:-2\r\n"
        );
        assert_eq!(
            replies(
                &store,
                "SET k v\nEXPIRE k 10 XX\nEXPIRE k 10 NX\nEXPIRE k 5 GT\nEXPIRE k 5 LT\nTTL k"
            ),
            "+OK\r\n:0\r\n:1\r\n:0\r\n:1\r\n:5\r\n"
        );
        assert_eq!(
            replies(&store, "PERSIST k\nPERSIST k\nTTL k"),
            ":1\r\n:0\r\n:-1\r\n"
        );
        assert_eq!(replies(&store, "EXPIRE k -1\nGET k"), ":1\r\n$-1\r\n");
        assert_eq!(
            replies(&store, "EXPIRE k 10 NX XX"),
            "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"
        );
        assert_eq!(
            replies(&store, "EXPIRE k 10 FOO"),
            "-ERR Unsupported option FOO\r\n"
        );
        assert_eq!(
            replies(&store, "EXPIRE k 9223372036854775807"),
            "-ERR invalid expire time in 'expire' command\r\n"
        );
    }

    #[test]
    fn unknown_commands_and_arity_as_redis_words_them() {
        let store = Store::new();
        assert_eq!(
            replies(&store, "FOO a b"),
            "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n"
        );
        assert_eq!(
            replies(&store, "GET"),
            "-ERR wrong number of arguments for 'get' command\r\n"
        );
        assert_eq!(
            replies(&store, "HELLO 3"),
            "-ERR unknown command `HELLO`, with args beginning with: `3`, \r\n"
        );
        assert_eq!(
            replies(&store, "CONFIG FOO"),
            "-ERR unknown subcommand 'FOO'. Try CONFIG HELP.\r\n"
        );
        assert_eq!(
            replies(&store, "CONFIG GET"),
            "-ERR wrong number of arguments for 'config|get' command\r\n"
        );
        assert_eq!(
            replies(&store, "CONFIG GET save appendonly"),
            "*4\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$2\r\nno\r\n"
        );
        let long = "x".repeat(200);
        let reply = replies(&store, &format!("FOO {long}"));
        assert_eq!(
            reply,
            format!(
                "-ERR unknown command 'FOO', with args beginning with: '{}' \r\n",
                &long[..128]
            )
        );
    }

    #[test]
    fn keys_and_the_database() {
        let store = Store::new();
        assert_eq!(
            replies(&store, "MSET user:1 a user:2 b other c\nDBSIZE"),
            "+OK\r\n:3\r\n"
        );
        let reply = replies(&store, "KEYS user:*");
        assert!(reply.starts_with("*2\r\n"), "{reply}");
        assert!(reply.contains("user:1") && reply.contains("user:2"), "{reply}");
        assert_eq!(
            replies(&store, "SELECT 0\nSELECT 1"),
            "+OK\r\n-ERR DB index is out of range\r\n"
        );
        assert_eq!(replies(&store, "FLUSHDB now"), "-ERR syntax error\r\n");
        assert_eq!(replies(&store, "FLUSHALL\nDBSIZE"), "+OK\r\n:0\r\n");
    }

    #[test]
    fn http_lines_are_refused_unanswered() {
        let store = Store::new();
        let mut out = Vec::new();
        let input = b"POST / HTTP/1.1\r\n";
        let mut parser = Parser::default();
        parser.parse(input, &LIMITS).unwrap();
        let after = run(
            &store,
            &Settings { max_bulk: 16 },
            &mut Session::new(),
            parser.args(input),
            &mut out,
        );
        assert_eq!(after, After::Refuse);
        assert!(out.is_empty());
    }
}
