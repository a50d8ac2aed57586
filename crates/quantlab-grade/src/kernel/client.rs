//! A kernel process and the two sockets we need: shell (requests) and iopub (outputs).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::time::{Instant, sleep, sleep_until, timeout};
use zeromq::{DealerSocket, Socket, SocketRecv, SocketSend, SubSocket};

use super::spec::KernelSpec;
use super::wire::{Codec, Message};

/// How long a kernel may take to start and answer `kernel_info_request`.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long output must pause, after a cell is done, before we stop listening for more.
const SETTLE_QUIET: Duration = Duration::from_millis(250);
/// The most we listen for trailing output after a cell is done.
const SETTLE_MAX: Duration = Duration::from_secs(3);
/// How long to wait for the `idle` status once the reply has come.
const IDLE_GRACE: Duration = Duration::from_secs(3);

/// How a cell's execution ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Outcome {
    /// The kernel replied (`ok` or `error`).
    #[default]
    Completed,
    /// No reply within the time limit; the kernel has been killed.
    TimedOut,
    /// The kernel process exited while running the cell.
    KernelDied,
}

/// Text of one output stream, kept up to a cap; whatever comes past it is only counted
/// (and scanned for the grader's pass line and for panics).
#[derive(Debug, Clone, Default)]
pub struct StreamText {
    /// The first bytes received, up to the cap.
    pub text: String,
    /// Bytes received beyond the cap and dropped.
    pub dropped: usize,
}

impl StreamText {
    fn push(&mut self, chunk: &str, cap: usize) {
        let room = if self.dropped > 0 { 0 } else { cap.saturating_sub(self.text.len()) };
        if chunk.len() <= room {
            self.text.push_str(chunk);
        } else {
            let mut cut = room;
            while !chunk.is_char_boundary(cut) {
                cut -= 1;
            }
            self.text.push_str(&chunk[..cut]);
            self.dropped += chunk.len() - cut;
        }
    }
}

/// Finds whole lines equal to `target` in a stream that arrives in chunks.
#[derive(Debug, Default)]
struct LineWatch {
    target: Option<String>,
    line: String,
    too_long: bool,
    seen: bool,
}

impl LineWatch {
    fn feed(&mut self, chunk: &str) {
        let Some(max) = self.target.as_ref().map(String::len) else {
            return;
        };
        for piece in chunk.split_inclusive('\n') {
            let (body, ends) = match piece.strip_suffix('\n') {
                Some(b) => (b, true),
                None => (piece, false),
            };
            if !self.too_long {
                self.line.push_str(body);
                // A line longer than the target can never equal it: stop keeping it.
                if self.line.trim_end_matches('\r').len() > max {
                    self.too_long = true;
                    self.line.clear();
                }
            }
            if ends {
                self.finish_line();
            }
        }
    }

    fn finish_line(&mut self) {
        if let Some(t) = &self.target
            && !self.too_long
            && self.line.trim_end_matches('\r') == t
        {
            self.seen = true;
        }
        self.line.clear();
        self.too_long = false;
    }
}

/// Finds a substring in a chunked stream, across chunk boundaries; keeps a little context.
#[derive(Debug, Default)]
struct Spotter {
    tail: String,
    excerpt: Option<String>,
}

impl Spotter {
    const NEEDLE: &'static str = "panicked at";

    const KEEP: usize = 600;

    fn feed(&mut self, chunk: &str) {
        if let Some(ex) = self.excerpt.as_mut() {
            // The message follows the `panicked at` line, often in a later chunk.
            let mut take = Self::KEEP.saturating_sub(ex.len()).min(chunk.len());
            while !chunk.is_char_boundary(take) {
                take -= 1;
            }
            ex.push_str(&chunk[..take]);
            return;
        }
        let joined = format!("{}{}", self.tail, chunk);
        if let Some(at) = joined.find(Self::NEEDLE) {
            let start = joined[..at].rfind('\n').map_or(0, |i| i + 1);
            let mut end = (start + Self::KEEP).min(joined.len());
            while !joined.is_char_boundary(end) {
                end -= 1;
            }
            self.excerpt = Some(joined[start..end].to_string());
            return;
        }
        let mut keep = joined.len().saturating_sub(200);
        while !joined.is_char_boundary(keep) {
            keep += 1;
        }
        self.tail = joined[keep..].to_string();
    }
}

/// Everything one cell's execution produced.
#[derive(Debug, Clone, Default)]
pub struct CellRun {
    /// How the execution ended.
    pub outcome: Outcome,
    /// `status` of the `execute_reply` (`ok`, `error`, `aborted`), empty without reply.
    pub reply_status: String,
    /// The error the kernel reported (from an `error` message or an error reply), as
    /// `ename: evalue` followed by the traceback; fields evcxr leaves out are just missing.
    pub error: Option<String>,
    /// Printed to stdout.
    pub stdout: StreamText,
    /// Printed to stderr (evcxr also reports compile errors and panics here).
    pub stderr: StreamText,
    /// The first lines of a panic message (`... panicked at ...`) seen on stderr.
    pub panic: Option<String>,
    /// The `text/plain` of the cell's value (`execute_result`).
    pub result: Option<String>,
    /// Whether the watched line (see [`Kernel::execute`]) was printed on stdout as a line.
    pub watch_seen: bool,
    /// The outputs in nbformat form, for the executed copy of the notebook.
    pub outputs: Vec<Value>,
    /// The kernel's execution counter for the cell.
    pub execution_count: Option<i64>,
}

impl CellRun {
    /// The cell ran to the end without error or panic.
    pub fn clean(&self) -> bool {
        self.outcome == Outcome::Completed && self.reply_status == "ok" && self.error.is_none() && self.panic.is_none()
    }
}

struct Live {
    child: Child,
    shell: DealerSocket,
    iopub: SubSocket,
    codec: Codec,
    connection_file: PathBuf,
}

/// A running kernel (restarted on demand) and the runtime that drives its sockets.
pub struct Kernel {
    rt: tokio::runtime::Runtime,
    spec: KernelSpec,
    cwd: PathBuf,
    build_dir: Option<PathBuf>,
    live: Option<Live>,
    /// Bytes of each stream kept per cell.
    pub output_cap: usize,
}

fn free_ports(n: usize) -> Result<Vec<u16>> {
    // Bind all at once so the ports differ, then release them for the kernel.
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<_>>()
        .context("cannot reserve local ports for the kernel")?;
    listeners.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

fn kill_group(child: &mut Child) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: `kill` has no memory-safety preconditions; the negative pid names the process
    // group we created for this kernel (process_group(0) at spawn), so it only reaches the
    // kernel and the processes it started (evcxr's runner, cargo, rustc).
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
    // The group's other members (evcxr's runner, a cargo build) die a moment later. Wait for
    // them, briefly: the next kernel in the same build directory must not find it still in
    // use (binder/rust-kernel would then send it to a cold private one).
    let stop = std::time::Instant::now() + GROUP_EXIT_WAIT;
    // SAFETY: signal 0 only asks whether any process of the group still exists.
    while unsafe { libc::kill(-pid, 0) } == 0 && std::time::Instant::now() < stop {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How long a killed kernel's process group may take to be gone.
const GROUP_EXIT_WAIT: Duration = Duration::from_secs(5);

impl Drop for Live {
    fn drop(&mut self) {
        kill_group(&mut self.child);
        let _ = std::fs::remove_file(&self.connection_file);
    }
}

impl Kernel {
    /// Starts a kernel from `spec` with working directory `cwd`, building in a private
    /// temporary directory.
    pub fn start(spec: KernelSpec, cwd: &Path) -> Result<Self> {
        Self::start_in(spec, cwd, None)
    }

    /// Starts a kernel that builds in `build_dir` (evcxr's `EVCXR_TMPDIR`), so compiled
    /// dependencies left there by an earlier kernel are reused. No other kernel may use the
    /// folder meanwhile (see [`crate::pool`]); `None` is a private temporary directory.
    pub fn start_in(spec: KernelSpec, cwd: &Path, build_dir: Option<&Path>) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let build_dir = build_dir.map(Path::to_path_buf);
        let mut k = Self { rt, spec, cwd: cwd.to_path_buf(), build_dir, live: None, output_cap: 256 * 1024 };
        k.restart()?;
        Ok(k)
    }

    /// Kills the kernel (if running) and starts a fresh one: all state is gone.
    pub fn restart(&mut self) -> Result<()> {
        self.live = None; // Drop kills the old process group.
        let live = self.rt.block_on(launch(&self.spec, &self.cwd, self.build_dir.as_deref()))?;
        self.live = Some(live);
        Ok(())
    }

    /// Runs `code`, waiting at most `limit`. If `watch` is given, reports whether that exact
    /// line appeared on stdout. On a time-out the kernel is killed; on a time-out or a dead
    /// kernel, the next `execute` needs a [`Kernel::restart`] first (done automatically).
    pub fn execute(&mut self, code: &str, limit: Duration, watch: Option<&str>) -> Result<CellRun> {
        if self.live.is_none() {
            self.restart()?;
        }
        let cap = self.output_cap;
        let live = self.live.as_mut().expect("just started");
        let run = self.rt.block_on(run_cell(live, code, limit, watch, cap))?;
        if run.outcome != Outcome::Completed {
            self.live = None;
        }
        Ok(run)
    }
}

async fn launch(spec: &KernelSpec, cwd: &Path, build_dir: Option<&Path>) -> Result<Live> {
    let ports = free_ports(5)?;
    let key = uuid::Uuid::new_v4().to_string();
    let connection_file = std::env::temp_dir().join(format!("quantlab-grade-kernel-{}.json", uuid::Uuid::new_v4()));
    let info = json!({"ip": "127.0.0.1", "transport": "tcp", "signature_scheme": "hmac-sha256",
        "key": key, "shell_port": ports[0], "iopub_port": ports[1], "stdin_port": ports[2],
        "control_port": ports[3], "hb_port": ports[4], "kernel_name": "rust"});
    std::fs::write(&connection_file, info.to_string())
        .with_context(|| format!("cannot write {}", connection_file.display()))?;
    let argv: Vec<String> =
        spec.argv.iter().map(|a| a.replace("{connection_file}", &connection_file.to_string_lossy())).collect();
    let mut cmd = Command::new(&argv[0]);
    // A grading kernel never uses the kernelspec's EVCXR_TMPDIR (the lesson's kernelspec
    // sets one to keep its warm build): kernels running side by side in one folder overwrite
    // each other's build. It builds in the folder it was given, which it has to itself, or
    // in a private temporary one.
    let env = spec.env.iter().filter(|(k, _)| k.as_str() != "EVCXR_TMPDIR");
    cmd.args(&argv[1..]).env_remove("EVCXR_TMPDIR").envs(env).current_dir(cwd);
    if let Some(dir) = build_dir {
        cmd.env("EVCXR_TMPDIR", dir);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    // Own process group, so a time-out kills the kernel and everything it started.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd.spawn().with_context(|| format!("cannot start kernel `{}`", argv[0]))?;
    let mut live = Live {
        child,
        shell: DealerSocket::new(),
        iopub: SubSocket::new(),
        codec: Codec::new(&key, &uuid::Uuid::new_v4().to_string()),
        connection_file,
    };
    let deadline = Instant::now() + START_TIMEOUT;
    connect(&mut live, &ports, deadline).await?;
    handshake(&mut live, deadline).await?;
    Ok(live)
}

async fn connect(live: &mut Live, ports: &[u16], deadline: Instant) -> Result<()> {
    live.iopub.subscribe("").await?;
    let shell_url = format!("tcp://127.0.0.1:{}", ports[0]);
    let iopub_url = format!("tcp://127.0.0.1:{}", ports[1]);
    let mut shell_ok = false;
    let mut iopub_ok = false;
    // The kernel binds its ports a moment after it starts: retry until it does.
    while !(shell_ok && iopub_ok) {
        if let Some(status) = live.child.try_wait()? {
            bail!("the kernel exited during start-up ({status})");
        }
        if Instant::now() > deadline {
            bail!("the kernel did not open its ports within {START_TIMEOUT:?}");
        }
        if !shell_ok {
            shell_ok = live.shell.connect(&shell_url).await.is_ok();
        }
        if !iopub_ok {
            iopub_ok = live.iopub.connect(&iopub_url).await.is_ok();
        }
        if !(shell_ok && iopub_ok) {
            sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Asks for `kernel_info` until the shell answers and iopub delivers: a SUB socket only
/// receives once its subscription has reached the kernel.
async fn handshake(live: &mut Live, deadline: Instant) -> Result<()> {
    let mut shell_ok = false;
    loop {
        if Instant::now() > deadline {
            bail!("the kernel did not answer kernel_info_request within {START_TIMEOUT:?}");
        }
        if let Some(status) = live.child.try_wait()? {
            bail!("the kernel exited during start-up ({status})");
        }
        let (msg, _) = live.codec.encode("kernel_info_request", json!({}));
        live.shell.send(msg).await?;
        let wait = Instant::now() + Duration::from_secs(1);
        loop {
            tokio::select! {
                m = live.shell.recv() => {
                    if live.codec.decode(m?).is_some_and(|m| m.msg_type == "kernel_info_reply") {
                        shell_ok = true;
                    }
                }
                m = live.iopub.recv() => {
                    if live.codec.decode(m?).is_some() && shell_ok {
                        return drain(live).await;
                    }
                }
                _ = sleep_until(wait) => break,
            }
        }
    }
}

/// Discards messages left over from the handshake.
async fn drain(live: &mut Live) -> Result<()> {
    while let Ok(m) = timeout(Duration::from_millis(300), live.iopub.recv()).await {
        m?;
    }
    while let Ok(m) = timeout(Duration::from_millis(10), live.shell.recv()).await {
        m?;
    }
    Ok(())
}

fn error_text(content: &Value) -> String {
    let s = |k: &str| content.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut text = match (s("ename"), s("evalue")) {
        (n, v) if n.is_empty() => v,
        (n, v) if v.is_empty() => n,
        (n, v) => format!("{n}: {v}"),
    };
    if let Some(tb) = content.get("traceback").and_then(Value::as_array) {
        for line in tb.iter().filter_map(Value::as_str) {
            if !text.contains(line) {
                text.push('\n');
                text.push_str(line);
            }
        }
    }
    if text.trim().is_empty() { "the kernel reported an error without details".into() } else { text }
}

/// Appends stream text to the outputs, merging with the previous output of the same stream.
fn push_stream(outputs: &mut Vec<Value>, name: &str, text: &str) {
    if let Some(last) = outputs.last_mut()
        && last["output_type"] == "stream"
        && last["name"] == name
        && let Some(prev) = last["text"].as_str()
    {
        last["text"] = json!(format!("{prev}{text}"));
        return;
    }
    outputs.push(json!({"output_type": "stream", "name": name, "text": text}));
}

async fn run_cell(live: &mut Live, code: &str, limit: Duration, watch: Option<&str>, cap: usize) -> Result<CellRun> {
    let (msg, id) = live.codec.encode(
        "execute_request",
        json!({"code": code, "silent": false, "store_history": true, "user_expressions": {},
               "allow_stdin": false, "stop_on_error": false}),
    );
    live.shell.send(msg).await?;
    let mut run = CellRun::default();
    let mut watcher = LineWatch { target: watch.map(str::to_string), ..Default::default() };
    let mut spotter = Spotter::default();
    let deadline = Instant::now() + limit;
    let mut idle = false;
    // evcxr's error reply may carry no details while the iopub `error` does; the two come on
    // different sockets in either order, so the iopub one wins.
    let mut reply_error: Option<String> = None;
    let mut replied_at: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    while !(idle && replied_at.is_some()) {
        let grace = replied_at.map_or(deadline, |t| (t + IDLE_GRACE).min(deadline));
        tokio::select! {
            m = live.shell.recv() => {
                let Some(m) = live.codec.decode(m?) else { continue };
                if m.parent_id == id && m.msg_type == "execute_reply" {
                    replied_at = Some(Instant::now());
                    run.reply_status = m.content["status"].as_str().unwrap_or("").to_string();
                    run.execution_count = m.content["execution_count"].as_i64();
                    if run.reply_status == "error" {
                        reply_error = Some(error_text(&m.content));
                    }
                }
            }
            m = live.iopub.recv() => {
                let Some(m) = live.codec.decode(m?) else { continue };
                if m.parent_id != id { continue; }
                on_iopub(&m, &mut run, &mut watcher, &mut spotter, cap);
                if m.msg_type == "status" && m.content["execution_state"] == "idle" {
                    idle = true;
                }
            }
            _ = tick.tick() => {
                if live.child.try_wait()?.is_some() {
                    run.outcome = Outcome::KernelDied;
                    break;
                }
            }
            _ = sleep_until(grace) => {
                if replied_at.is_none() {
                    run.outcome = Outcome::TimedOut;
                }
                break;
            }
        }
    }
    if run.outcome == Outcome::Completed {
        settle(live, &id, &mut run, &mut watcher, &mut spotter, cap).await?;
    }
    if run.error.is_none() {
        run.error = reply_error;
    }
    watcher.finish_line();
    run.watch_seen = watcher.seen;
    run.panic = spotter.excerpt;
    for (name, s) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        if s.dropped > 0 {
            let note = format!("\n[quantlab-grade: {} more bytes of {name} not kept]\n", s.dropped);
            push_stream(&mut run.outputs, name, &note);
        }
    }
    Ok(run)
}

/// Collects output that trails the `idle` status. evcxr forwards the runner's stderr from a
/// pipe, so a panic message (with its backtrace) can arrive after the cell is reported done;
/// it still carries this request as parent. Waits while such output keeps coming, briefly.
async fn settle(
    live: &mut Live,
    id: &str,
    run: &mut CellRun,
    watcher: &mut LineWatch,
    spotter: &mut Spotter,
    cap: usize,
) -> Result<()> {
    let hard_stop = Instant::now() + SETTLE_MAX;
    let mut quiet_until = Instant::now() + SETTLE_QUIET;
    while let Ok(m) =
        timeout(quiet_until.min(hard_stop).saturating_duration_since(Instant::now()), live.iopub.recv()).await
    {
        let Some(m) = live.codec.decode(m?) else {
            continue;
        };
        if m.parent_id == id && m.msg_type != "status" {
            on_iopub(&m, run, watcher, spotter, cap);
            quiet_until = Instant::now() + SETTLE_QUIET;
        }
    }
    Ok(())
}

fn on_iopub(m: &Message, run: &mut CellRun, watcher: &mut LineWatch, spotter: &mut Spotter, cap: usize) {
    let c = &m.content;
    match m.msg_type.as_str() {
        "stream" => {
            let text = c["text"].as_str().unwrap_or("");
            let name = if c["name"] == "stderr" { "stderr" } else { "stdout" };
            let stream = if name == "stderr" { &mut run.stderr } else { &mut run.stdout };
            let before = stream.text.len();
            stream.push(text, cap);
            let kept = stream.text[before..].to_string();
            if !kept.is_empty() {
                push_stream(&mut run.outputs, name, &kept);
            }
            if name == "stdout" {
                watcher.feed(text);
            } else {
                spotter.feed(text);
            }
        }
        "execute_result" | "display_data" => {
            if m.msg_type == "execute_result" {
                run.result = c["data"]["text/plain"].as_str().map(str::to_string);
            }
            let mut out = json!({"output_type": m.msg_type, "data": c["data"].clone(),
                "metadata": c.get("metadata").cloned().unwrap_or(json!({}))});
            if m.msg_type == "execute_result" {
                out["execution_count"] = c.get("execution_count").cloned().unwrap_or(Value::Null);
            }
            run.outputs.push(out);
        }
        "error" => {
            let text = error_text(c);
            run.outputs.push(json!({"output_type": "error",
                "ename": c["ename"].as_str().unwrap_or("Error"),
                "evalue": c["evalue"].as_str().unwrap_or(""),
                "traceback": c.get("traceback").cloned().unwrap_or(json!([text.clone()]))}));
            run.error.get_or_insert(text);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_watch_needs_a_whole_line_across_chunks() {
        let mut w = LineWatch { target: Some("N q ok".into()), ..Default::default() };
        w.feed("xx N q ok\nN q");
        assert!(!w.seen);
        w.feed(" ok\r\n");
        assert!(w.seen);
        let mut w = LineWatch { target: Some("N q ok".into()), ..Default::default() };
        w.feed("N q okay\n");
        w.finish_line();
        assert!(!w.seen);
        let mut w = LineWatch { target: Some("N q ok".into()), ..Default::default() };
        w.feed("N q ok");
        w.finish_line();
        assert!(w.seen);
    }

    #[test]
    fn spotter_finds_panics_split_across_chunks() {
        let mut s = Spotter::default();
        s.feed(&"x".repeat(10_000));
        s.feed("\nthread '<unnamed>' pani");
        s.feed("cked at src/lib.rs:1:1:\nboom\n");
        assert_eq!(s.excerpt.unwrap(), "thread '<unnamed>' panicked at src/lib.rs:1:1:\nboom\n");
    }

    #[test]
    fn stream_text_keeps_the_cap_and_counts_the_rest() {
        let mut s = StreamText::default();
        s.push("héllo", 2); // 'é' is 2 bytes: cut before it
        s.push("world", 2);
        assert_eq!((s.text.as_str(), s.dropped), ("h", 10));
    }

    #[test]
    fn error_text_copes_with_missing_ename() {
        assert_eq!(error_text(&json!({"evalue": "E0308"})), "E0308");
        assert_eq!(error_text(&json!({"ename": "Error", "evalue": "x", "traceback": ["x", "at 1"]})), "Error: x\nat 1");
        assert!(error_text(&json!({})).contains("without details"));
    }
}
