//! `hearth-bench HEARTH_BIN`: starts a release `hearth serve` on a fresh data dir and the
//! scripted fake upstream (`hearth-fake-llm`, from this binary's directory), then measures streaming through Hearth against the upstream direct,
//! and prints Markdown tables for bench/README.md:
//! - time to first token and tokens/s of 500-token streams, p50/p99, at 1, 64 and 1,000
//!   concurrent streams, direct, through `/v1/chat/completions`, and through a chat run (SSE);
//! - added time to first token under equal load: probes of each path one at a time beside 63
//!   streams through Hearth (HEARTH_BENCH_PROBES per path; HEARTH_BENCH_ONLY=added runs only
//!   this);
//! - 9,500 (HEARTH_BENCH_STREAMS) concurrent slow streams (20 s each) through Hearth's `/v1`:
//!   completed, failed, peak RSS (HEARTH_BENCH_ONLY=streams runs only these and the next);
//! - 10,000 (HEARTH_BENCH_WS_RUNS) concurrent slow chat runs, 100 to a WebSocket (each holds
//!   one socket in Hearth, so they fit the open-file limit that caps `/v1`; HEARTH_BENCH_ONLY=runs
//!   runs only these);
//! - idle WebSockets (measured first, on the fresh process): RSS per authenticated connection.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt as _, BufReader};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let bin = std::env::args()
        .nth(1)
        .ok_or("usage: hearth-bench HEARTH_BIN")?;
    let quick = std::env::var("HEARTH_BENCH_QUICK").is_ok();
    let data = std::env::temp_dir().join(format!("hearth-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    // Hearth gets core 0 and the load generator with the upstream core 1, so neither measures
    // the other's CPU use (HEARTH_BENCH_PIN=0 shares both cores instead).
    let pin = std::env::var("HEARTH_BENCH_PIN").map_or(true, |v| v != "0")
        && std::path::Path::new("/usr/bin/taskset").exists()
        && std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2);
    let mut command = if pin {
        let status = std::process::Command::new("taskset")
            .args(["-a", "-cp", "1", &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            return Err("taskset could not pin the load generator".into());
        }
        let mut c = tokio::process::Command::new("taskset");
        c.args(["-c", "0"]).arg(&bin);
        c
    } else {
        tokio::process::Command::new(&bin)
    };
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env_remove("HEARTH_BENCH_QUICK")
        .env_remove("HEARTH_BENCH_STREAMS")
        .env_remove("HEARTH_BENCH_WS_RUNS")
        .env_remove("HEARTH_BENCH_PIN")
        .env_remove("HEARTH_BENCH_ONLY")
        .env_remove("HEARTH_BENCH_PROBES")
        .env_remove("HEARTH_BENCH_DB_CONNECTIONS")
        .env_remove("HEARTH_BENCH_DB_ACQUIRE_SECS")
        .env("HEARTH_AUTH__REGISTRATION", "open")
        .env("HEARTH_LOG__LEVEL", "error")
        // One bench user holds every socket and run: lift the per-user shares.
        .env("HEARTH_CHAT__MAX_RUNS_PER_USER", "1000000")
        .env("HEARTH_SERVER__MAX_WEBSOCKETS_PER_USER", "1000000")
        .env(
            "HEARTH_DATABASE__MAX_CONNECTIONS",
            std::env::var("HEARTH_BENCH_DB_CONNECTIONS").unwrap_or_else(|_| "16".into()),
        )
        .env(
            "HEARTH_DATABASE__ACQUIRE_TIMEOUT_SECS",
            std::env::var("HEARTH_BENCH_DB_ACQUIRE_SECS").unwrap_or_else(|_| "5".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("no pid")?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let base = loop {
        let line = lines
            .next_line()
            .await?
            .ok_or("hearth exited before it was ready")?;
        if let Some(url) = line.strip_prefix("Hearth is ready at ") {
            break url.trim_end_matches('/').to_owned();
        }
    };
    // The upstream runs as its own process (beside this binary) so that, with thousands of
    // streams, its sockets do not count against this process's open-file limit.
    let fake_bin = std::env::current_exe()?
        .parent()
        .ok_or("no directory for hearth-fake-llm")?
        .join("hearth-fake-llm");
    let (mut fake_child, fake_url) =
        start_fake(&fake_bin, if pin { &["taskset", "-c", "1"] } else { &[] }).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(2000)
        .build()?;
    let auth = post_json(
        &http,
        &format!("{base}/api/v1/auth/register"),
        None,
        json!({"email": "bench@example.com", "password": "bench-password-123"}),
    )
    .await?;
    let token = auth["access_token"].as_str().ok_or("no token")?.to_owned();
    let key = post_json(
        &http,
        &format!("{base}/api/v1/api-keys"),
        Some(&token),
        json!({"name": "bench"}),
    )
    .await?;
    let key = key["key"].as_str().ok_or("no key")?.to_owned();
    add_provider(&http, &base, &token, "fake", &fake_url).await?;

    println!(
        "RSS after start: {:.1} MiB; {}\n",
        rss_kib(pid)? as f64 / 1024.0,
        if pin {
            "Hearth pinned to core 0, load generator and upstream to core 1"
        } else {
            "all processes share all cores"
        }
    );

    // Idle WebSockets first, on a fresh process: later phases leave freed memory in the
    // allocator that new connections would reuse, hiding their cost.
    // HEARTH_BENCH_ONLY=streams runs only the concurrent-streams part.
    // HEARTH_BENCH_ONLY=added runs only the added-latency probes under load.
    let only = std::env::var("HEARTH_BENCH_ONLY").unwrap_or_default();
    let only_streams = only == "streams";
    let only_added = only == "added";
    let only_runs = only == "runs";
    let n_ws = if only_streams || only_added || only_runs {
        0
    } else if quick {
        500
    } else {
        10_000
    };
    println!("### Idle WebSockets ({n_ws} authenticated connections held)\n");
    let before = rss_kib(pid)?;
    let ws_url = format!("{}/api/v1/ws", base.replacen("http://", "ws://", 1));
    let mut sockets = Vec::with_capacity(n_ws);
    let mut failed = 0;
    for chunk in (0..n_ws).collect::<Vec<_>>().chunks(200) {
        let opened =
            futures_util::future::join_all(chunk.iter().map(|_| open_ws(&ws_url, &token))).await;
        for s in opened {
            match s {
                Ok(s) => sockets.push(s),
                Err(_) => failed += 1,
            }
        }
    }
    let after = rss_kib(pid)?;
    println!("| connections | failed | RSS before | RSS after | RSS per connection |");
    println!("|---|---|---|---|---|");
    println!(
        "| {} | {failed} | {:.1} MiB | {:.1} MiB | {:.1} KiB |",
        sockets.len(),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        after.saturating_sub(before) as f64 / sockets.len().max(1) as f64
    );
    drop(sockets);

    println!("\n### 500-token streams: time to first token (ms) and tokens/s per stream\n");
    println!("| path | concurrent | streams | TTFT p50 | TTFT p99 | added TTFT p50 | added TTFT p99 | tok/s p50 | tok/s p99 (slowest 1%) | errors |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let levels: &[(usize, usize)] = if only_streams || only_added || only_runs {
        &[]
    } else if quick {
        &[(1, 20), (64, 64)]
    } else {
        &[(1, 200), (64, 640), (1000, 2000)]
    };
    for &(concurrency, total) in levels {
        let direct = load(&http, Target::Direct(fake_url.clone()), concurrency, total).await;
        let proxied = load(
            &http,
            Target::OpenAi(base.clone(), key.clone()),
            concurrency,
            total,
        )
        .await;
        let chat_total = if concurrency >= 1000 { 1000 } else { total };
        let chat = load(
            &http,
            Target::Chat(base.clone(), token.clone()),
            concurrency,
            chat_total,
        )
        .await;
        for (name, s) in [
            ("direct to upstream", &direct),
            ("Hearth /v1/chat/completions", &proxied),
            ("Hearth chat run (SSE)", &chat),
        ] {
            let added = |p: f64| {
                if std::ptr::eq(s, &direct) {
                    "–".to_owned()
                } else {
                    format!("{:.2}", pct(&s.ttft, p) - pct(&direct.ttft, p))
                }
            };
            println!(
                "| {name} | {concurrency} | {} | {:.2} | {:.2} | {} | {} | {:.0} | {:.0} | {} |",
                s.ttft.len(),
                pct(&s.ttft, 50.0),
                pct(&s.ttft, 99.0),
                added(50.0),
                added(99.0),
                pct(&s.tps, 50.0),
                pct(&s.tps, 1.0),
                s.errors
            );
        }
    }

    if !only_streams && !only_runs {
        let probes = match std::env::var("HEARTH_BENCH_PROBES") {
            Ok(n) => n.parse()?,
            Err(_) if quick => 30,
            Err(_) => 500,
        };
        // The probes get an upstream of their own, and it and the probing thread run at
        // real-time priority on the load generator's core: a probe is then answered and read
        // at once instead of waiting for the background streams' time slice, so the direct
        // probes measure the loopback path and the others what Hearth adds under its load
        // (HEARTH_BENCH_RT=0: the probes share the background upstream and priority).
        let realtime = pin
            && std::env::var("HEARTH_BENCH_RT").map_or(true, |v| v != "0")
            && std::path::Path::new("/usr/bin/chrt").exists();
        let mut probe_child = None;
        let (probe_url, probe_model) = if realtime {
            let (child, url) =
                start_fake(&fake_bin, &["chrt", "-f", "50", "taskset", "-c", "1"]).await?;
            probe_child = Some(child);
            add_provider(&http, &base, &token, "probe", &url).await?;
            // A second provider's model of a taken name is called PROVIDER/NAME.
            (url, "probe/tokens-500")
        } else {
            (fake_url.clone(), "tokens-500")
        };
        println!("\n### Added time to first token under equal load ({probes} probes per path, one at a time, beside 63 streams through Hearth)\n");
        println!("{ADDED_NOTE}\n");
        println!(
            "{}\n",
            if realtime {
                "The probing thread and the probes' own upstream run at real-time priority (SCHED_FIFO) on core 1."
            } else {
                "The probes share the background streams' upstream and priority."
            }
        );
        println!("| path | probes | TTFT p50 | TTFT p90 | TTFT p99 | added p50 | added p90 | added p99 | Hearth CPU during probes | errors |");
        println!("|---|---|---|---|---|---|---|---|---|---|");
        let targets = vec![
            (
                "direct to upstream",
                Target::Direct(probe_url.clone()),
                "tokens-500",
            ),
            (
                "Hearth /v1/chat/completions",
                Target::OpenAi(base.clone(), key.clone()),
                probe_model,
            ),
            (
                "Hearth chat run (SSE)",
                Target::Chat(base.clone(), token.clone()),
                probe_model,
            ),
        ];
        let background = Target::OpenAi(base.clone(), key.clone());
        let (stats, cpu) =
            probe_under_load(&http, &background, 63, &targets, probes, pid, realtime).await?;
        drop(probe_child);
        for ((name, _, _), s) in targets.iter().zip(&stats) {
            let added = |p: f64| {
                if std::ptr::eq(s, &stats[0]) {
                    "–".to_owned()
                } else {
                    format!("{:.2}", pct(&s.ttft, p) - pct(&stats[0].ttft, p))
                }
            };
            println!(
                "| {name} | {} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {:.0}% | {} |",
                s.ttft.len(),
                pct(&s.ttft, 50.0),
                pct(&s.ttft, 90.0),
                pct(&s.ttft, 99.0),
                added(50.0),
                added(90.0),
                added(99.0),
                cpu * 100.0,
                s.errors
            );
        }
    }
    if only_added {
        let _ = child.kill().await;
        let _ = fake_child.kill().await;
        let _ = std::fs::remove_dir_all(&data);
        return Ok(());
    }

    // Each proxied stream holds two sockets in Hearth (client and upstream); the default is
    // sized to this sandbox's hard limit of 20,000 open files per process.
    let n_slow: usize = match std::env::var("HEARTH_BENCH_STREAMS") {
        _ if only_runs => 0,
        Ok(n) => n.parse()?,
        Err(_) if quick => 500,
        Err(_) => 9_500,
    };
    // Clients arrive over 10 s (not in one instant); each stream lasts 20 s, so from the 10th
    // second all of them are open together.
    let ramp = Duration::from_secs(10);
    let target = Target::OpenAi(base.clone(), key.clone());
    if n_slow > 0 {
        println!("\n### {n_slow} concurrent streams through Hearth (/v1, 100 tokens 200 ms apart, 20 s each, clients arriving over 10 s)\n");
        held_streams(pid, n_slow, async {
            futures_util::future::join_all((0..n_slow).map(|i| {
                let (http, target) = (&http, &target);
                async move {
                    tokio::time::sleep(ramp.mul_f64(i as f64 / n_slow as f64)).await;
                    one(http, target, "tokens-slow")
                        .await
                        .map(|(ttft, _, _)| ttft)
                }
            }))
            .await
        })
        .await?;
    }

    // A WebSocket multiplexes runs, so these streams need one socket each in Hearth (the
    // upstream's) instead of two: 10,000 fit under the open-file limit that caps `/v1` above.
    let n_runs: usize = match std::env::var("HEARTH_BENCH_WS_RUNS") {
        Ok(n) => n.parse()?,
        Err(_) if quick => 500,
        Err(_) => 10_000,
    };
    let n_conns = n_runs.div_ceil(RUNS_PER_SOCKET);
    println!("\n### {n_runs} concurrent chat runs over {n_conns} WebSockets ({RUNS_PER_SOCKET} runs each; 100 tokens 200 ms apart, 20 s each, runs starting over 10 s)\n");
    held_streams(pid, n_runs, async {
        let opened =
            futures_util::future::join_all((0..n_conns).map(|_| open_ws(&ws_url, &token))).await;
        let mut results = Vec::with_capacity(n_runs);
        let mut sockets = Vec::new();
        for (c, ws) in opened.into_iter().enumerate() {
            let runs: Vec<usize> =
                (c * RUNS_PER_SOCKET..((c + 1) * RUNS_PER_SOCKET).min(n_runs)).collect();
            match ws {
                Ok(ws) => sockets.push((ws, runs)),
                Err(e) => results.extend(runs.iter().map(|_| Err(e.to_string().into()))),
            }
        }
        let all = futures_util::future::join_all(sockets.into_iter().map(|(ws, runs)| {
            let (http, base, token) = (&http, &base, &token);
            async move {
                let starts: Vec<Duration> = runs
                    .iter()
                    .map(|&i| ramp.mul_f64(i as f64 / n_runs as f64))
                    .collect();
                runs_over_socket(http, base, token, ws, &starts, "tokens-slow").await
            }
        }))
        .await;
        results.extend(all.into_iter().flatten());
        results
    })
    .await?;

    let _ = child.kill().await;
    let _ = fake_child.kill().await;
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}

async fn open_ws(url: &str, token: &str) -> Result<WebSocket, Error> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        json!({"type": "auth", "token": token}).to_string().into(),
    ))
    .await?;
    match ws.next().await {
        Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) if t.contains("ready") => Ok(ws),
        other => Err(format!("no ready frame: {other:?}").into()),
    }
}

/// Chat runs multiplexed over each WebSocket in the held-runs measurement.
const RUNS_PER_SOCKET: usize = 100;

/// Awaits `streams` (each a stream's time to first token, or why it failed) while sampling
/// Hearth's RSS, then prints completed, failed, TTFT and peak RSS per stream.
async fn held_streams(
    pid: u32,
    n: usize,
    streams: impl std::future::Future<Output = Vec<Result<Duration, Error>>>,
) -> Result<(), Error> {
    let before = rss_kib(pid)?;
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(before));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                if let Ok(r) = rss_kib(pid) {
                    peak.fetch_max(r, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    let started = Instant::now();
    let results = streams.await;
    sampler.abort();
    let mut held = Stats::default();
    let mut why: std::collections::BTreeMap<String, usize> = Default::default();
    for r in results {
        match r {
            Ok(ttft) => held.ttft.push(ttft.as_secs_f64() * 1000.0),
            Err(e) => {
                held.errors += 1;
                let text: String = e.to_string().chars().take(300).collect();
                *why.entry(text).or_default() += 1;
            }
        }
    }
    println!("| streams | completed | failed | TTFT p50 | TTFT p99 | wall time | RSS before | peak RSS | peak RSS per stream |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "| {n} | {} | {} | {:.0} ms | {:.0} ms | {:.1} s | {:.1} MiB | {:.1} MiB | {:.1} KiB |",
        held.ttft.len(),
        held.errors,
        pct(&held.ttft, 50.0),
        pct(&held.ttft, 99.0),
        started.elapsed().as_secs_f64(),
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
        (peak.saturating_sub(before)) as f64 / n.max(1) as f64
    );
    for (reason, count) in &why {
        println!("\nfailed {count}× with: {reason}");
    }
    Ok(())
}

type WebSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Chat runs over one WebSocket: run `i` makes a conversation after `starts[i]`, then sends
/// its message; its result is the time from that `send` frame to its first `text_delta`, once
/// its `done` event says it completed.
async fn runs_over_socket(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    ws: WebSocket,
    starts: &[Duration],
    model: &str,
) -> Vec<Result<Duration, Error>> {
    use tokio_tungstenite::tungstenite::Message;
    let n = starts.len();
    let (mut sink, mut frames) = ws.split();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Result<String, String>)>();
    let creators = futures_util::future::join_all(starts.iter().enumerate().map(|(i, &at)| {
        let tx = tx.clone();
        async move {
            tokio::time::sleep(at).await;
            let conv = post_json(
                http,
                &format!("{base}/api/v1/conversations"),
                Some(token),
                json!({"model": model}),
            )
            .await;
            let frame = conv.map_err(|e| e.to_string()).and_then(|c| {
                let id = c["id"].as_str().ok_or("no conversation id")?;
                Ok(json!({"type": "send", "id": i.to_string(), "conversation_id": id, "content": "go"})
                    .to_string())
            });
            let _ = tx.send((i, frame));
        }
    }));
    drop(tx);
    let mut creators = std::pin::pin!(creators);
    let mut creating = true;
    let mut results: Vec<Option<Result<Duration, Error>>> = (0..n).map(|_| None).collect();
    let mut sent: Vec<Option<Instant>> = vec![None; n];
    let mut ttft: Vec<Option<Duration>> = vec![None; n];
    let mut run_of: std::collections::HashMap<String, usize> = Default::default();
    let mut pending = n;
    // Why the socket stopped early: every run without a result fails with it.
    let mut broken: Option<String> = None;
    let end =
        |results: &mut [Option<Result<Duration, Error>>], i: usize, r: Result<Duration, Error>| {
            if results[i].is_none() {
                results[i] = Some(r);
                true
            } else {
                false
            }
        };
    while pending > 0 {
        tokio::select! {
            _ = &mut creators, if creating => creating = false,
            Some((i, frame)) = rx.recv() => match frame {
                Ok(frame) => {
                    sent[i] = Some(Instant::now());
                    if let Err(e) = sink.send(Message::Text(frame.into())).await {
                        broken = Some(format!("sending on the WebSocket: {e}"));
                        break;
                    }
                }
                Err(e) => {
                    if end(&mut results, i, Err(format!("making the conversation: {e}").into())) {
                        pending -= 1;
                    }
                }
            },
            frame = frames.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(_)) => continue,
                    other => {
                        broken = Some(format!("the WebSocket ended: {other:?}"));
                        break;
                    }
                };
                let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
                let index = |v: &Value| v["id"].as_str().and_then(|id| id.parse::<usize>().ok()).filter(|&i| i < n);
                match v["type"].as_str() {
                    Some("ack") => {
                        if let (Some(i), Some(run)) = (index(&v), v["run_id"].as_str()) {
                            run_of.insert(run.to_owned(), i);
                        }
                    }
                    Some("error") => {
                        if let Some(i) = index(&v) {
                            let reason = format!("{}: {}", v["code"], v["message"]);
                            if end(&mut results, i, Err(reason.into())) {
                                pending -= 1;
                            }
                        }
                    }
                    Some("event") => {
                        let Some(&i) = v["run_id"].as_str().and_then(|r| run_of.get(r)) else { continue };
                        match v["event"]["type"].as_str() {
                            Some("text_delta") if ttft[i].is_none() => {
                                ttft[i] = sent[i].map(|at| at.elapsed());
                            }
                            Some("done") => {
                                let r = match (v["event"]["status"].as_str(), ttft[i]) {
                                    (Some("complete"), Some(t)) => Ok(t),
                                    (status, _) => Err(format!("the run ended {status:?}, first token {:?}", ttft[i]).into()),
                                };
                                if end(&mut results, i, r) {
                                    pending -= 1;
                                }
                            }
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| Err(broken.clone().unwrap_or_else(|| "no result".into()).into()))
        })
        .collect()
}

const ADDED_NOTE: &str = "Probes go one at a time, rotating direct → /v1 → chat run, while 63 \
other 500-token streams run through Hearth's /v1 without pause (64 streams open at once). Every \
probe path sees the same load on the upstream and load generator's core, so the difference \
between a path through Hearth and the direct one is what Hearth adds at 64 concurrent streams.";

/// TTFT of `probes` streams per target (with its model), one at a time in rotation, while
/// `background` streams run through `load` back to back; also the share of one core Hearth used
/// meanwhile. With `realtime`, the probes run on a thread of their own at real-time priority.
async fn probe_under_load(
    http: &reqwest::Client,
    load: &Target,
    background: usize,
    targets: &[(&'static str, Target, &'static str)],
    probes: usize,
    pid: u32,
    realtime: bool,
) -> Result<(Vec<Stats>, f64), Error> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let stop = AtomicBool::new(false);
    let finished = AtomicUsize::new(0);
    let warm = tokio::sync::Notify::new();
    let workers = futures_util::future::join_all((0..background).map(|_| async {
        while !stop.load(Ordering::Relaxed) {
            let _ = one(http, load, "tokens-500").await;
            if finished.fetch_add(1, Ordering::Relaxed) + 1 == background * 2 {
                warm.notify_one();
            }
        }
    }));
    let measure = async {
        // Probing starts once every background stream has run at least once on average, so the
        // load is at its steady state.
        warm.notified().await;
        let cpu_before = cpu_ticks(pid)?;
        let wall = Instant::now();
        let stats = if realtime {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let targets = targets.to_vec();
            std::thread::spawn(move || {
                let run = || -> Result<Vec<Stats>, Error> {
                    make_realtime()?;
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    runtime.block_on(async {
                        let http = reqwest::Client::new();
                        Ok(run_probes(&http, &targets, probes).await)
                    })
                };
                let _ = tx.send(run());
            });
            rx.await.map_err(|_| "the probing thread failed")??
        } else {
            run_probes(http, targets, probes).await
        };
        let ticks = cpu_ticks(pid)? - cpu_before;
        stop.store(true, Ordering::Relaxed);
        // Clock ticks are 1/100 s on Linux.
        Ok::<_, Error>((stats, ticks as f64 / 100.0 / wall.elapsed().as_secs_f64()))
    };
    let (result, _) = tokio::join!(measure, workers);
    result
}

async fn run_probes(
    http: &reqwest::Client,
    targets: &[(&str, Target, &str)],
    probes: usize,
) -> Vec<Stats> {
    let mut stats: Vec<Stats> = targets.iter().map(|_| Stats::default()).collect();
    for _ in 0..probes {
        for ((_, target, model), s) in targets.iter().zip(stats.iter_mut()) {
            match one(http, target, model).await {
                Ok((ttft, _, _)) => s.ttft.push(ttft.as_secs_f64() * 1000.0),
                Err(_) => s.errors += 1,
            }
        }
    }
    stats
}

/// Gives the calling thread real-time priority (SCHED_FIFO 50) with `chrt`, whose `-p` takes
/// a thread id.
fn make_realtime() -> Result<(), Error> {
    // `/proc/thread-self` links to `PID/task/TID`.
    let link = std::fs::read_link("/proc/thread-self")?;
    let tid = link
        .file_name()
        .and_then(|t| t.to_str())
        .ok_or("no thread id")?;
    let status = std::process::Command::new("chrt")
        .args(["-f", "-p", "50", tid])
        .status()?;
    if !status.success() {
        return Err("chrt could not give the probing thread real-time priority".into());
    }
    Ok(())
}

/// Starts the fake upstream from `bin`, behind the `wrap` command (taskset, chrt), and reads
/// its OpenAI URL.
async fn start_fake(
    bin: &std::path::Path,
    wrap: &[&str],
) -> Result<(tokio::process::Child, String), Error> {
    let mut command = match wrap.split_first() {
        Some((first, rest)) => {
            let mut c = tokio::process::Command::new(first);
            c.args(rest).arg(bin);
            c
        }
        None => tokio::process::Command::new(bin),
    };
    let mut child = command
        .arg("127.0.0.1:0")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!(
                "cannot start {}: {e} (build it: cargo build --release -p hearth-fake-llm)",
                bin.display()
            )
        })?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    loop {
        let line = lines.next_line().await?.ok_or("the fake upstream exited")?;
        if let Some(rest) = line.strip_prefix("fake LLM upstream: OpenAI at ") {
            let url = rest.split_whitespace().next().ok_or("no URL")?.to_owned();
            return Ok((child, url));
        }
    }
}

/// Registers the upstream at `url` as OpenAI-compatible provider `name` and syncs its models.
async fn add_provider(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
    url: &str,
) -> Result<(), Error> {
    let provider = post_json(
        http,
        &format!("{base}/api/v1/admin/providers"),
        Some(token),
        json!({"kind": "openai", "name": name, "base_url": url}),
    )
    .await?;
    let id = provider["id"].as_str().ok_or("no provider id")?;
    http.post(format!("{base}/api/v1/admin/providers/{id}/sync"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

/// POSTs `body` (with a bearer `token`, if any) and reads the JSON answer; an error status fails.
async fn post_json(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: Value,
) -> Result<Value, Error> {
    let mut request = http.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    Ok(request.send().await?.error_for_status()?.json().await?)
}

/// User plus system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64, Error> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at state; utime and stime
    // are fields 14 and 15, i.e. the 12th and 13th after the closing parenthesis.
    let rest = stat.rsplit_once(')').ok_or("bad stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Ok(fields.get(11).ok_or("bad stat")?.parse::<u64>()?
        + fields.get(12).ok_or("bad stat")?.parse::<u64>()?)
}

fn rss_kib(pid: u32) -> Result<u64, Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).ok_or("bad VmRSS")?.parse()?)
}

#[derive(Clone)]
enum Target {
    Direct(String),
    OpenAi(String, String),
    Chat(String, String),
}

#[derive(Default)]
struct Stats {
    ttft: Vec<f64>,
    tps: Vec<f64>,
    errors: usize,
}

fn pct(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[i.min(v.len() - 1)]
}

async fn load(http: &reqwest::Client, target: Target, concurrency: usize, total: usize) -> Stats {
    load_model(http, target, concurrency, total, "tokens-500").await
}

async fn load_model(
    http: &reqwest::Client,
    target: Target,
    concurrency: usize,
    total: usize,
    model: &str,
) -> Stats {
    let results = futures_util::stream::iter(0..total)
        .map(|_| one(http, &target, model))
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    let mut stats = Stats::default();
    for r in results {
        match r {
            Ok((ttft, total, tokens)) => {
                stats.ttft.push(ttft.as_secs_f64() * 1000.0);
                let streaming = (total - ttft).as_secs_f64().max(1e-6);
                stats.tps.push(tokens.saturating_sub(1) as f64 / streaming);
            }
            Err(_) => stats.errors += 1,
        }
    }
    stats
}

/// One stream: (time to first token, total time, tokens).
async fn one(
    http: &reqwest::Client,
    target: &Target,
    model: &str,
) -> Result<(Duration, Duration, usize), Error> {
    let request = match target {
        Target::Direct(url) => http
            .post(format!("{url}/chat/completions"))
            .json(&json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "go"}]})),
        Target::OpenAi(base, key) => http
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(key)
            .json(&json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "go"}]})),
        Target::Chat(base, token) => {
            let conv = post_json(
                http,
                &format!("{base}/api/v1/conversations"),
                Some(token),
                json!({"model": model}),
            )
            .await?;
            let id = conv["id"].as_str().ok_or("no conversation id")?;
            http.post(format!("{base}/api/v1/conversations/{id}/messages"))
                .bearer_auth(token)
                .header("accept", "text/event-stream")
                .json(&json!({"content": "go"}))
        }
    };
    let started = Instant::now();
    let response = request.send().await?.error_for_status()?;
    let mut body = response.bytes_stream();
    let mut ttft = None;
    let mut tokens = 0usize;
    let mut carry = String::new();
    let marker = match target {
        Target::Chat(..) => "\"type\":\"text_delta\"",
        _ => "\"content\":\"tok",
    };
    let leading = match target {
        Target::Chat(..) => "\"text\":\" tok",
        _ => "\"content\":\" tok",
    };
    while let Some(chunk) = body.next().await {
        carry.push_str(&String::from_utf8_lossy(&chunk?));
        while let Some(end) = carry.find("\n\n") {
            let event: String = carry.drain(..end + 2).collect();
            if event.contains(marker) || event.contains(leading) {
                tokens += 1;
                ttft.get_or_insert_with(|| started.elapsed());
            }
            if event.contains("\"type\":\"error\"") || event.contains("\"error\":{") {
                // The event itself, so a failure table says what the error was.
                let text: String = event.trim().chars().take(300).collect();
                return Err(format!("error event: {text}").into());
            }
        }
    }
    let ttft = ttft.ok_or("no tokens")?;
    Ok((ttft, started.elapsed(), tokens))
}
