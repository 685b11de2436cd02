//! The gateway process: a listener, an accept thread and `threadCount` workers (std::net and
//! std::thread, no async runtime). A connection is served by one worker for its lifetime;
//! connections beyond the pool wait in a bounded queue (then in the kernel's backlog), never
//! dropped mid-request.

pub mod audit;
mod conn;
pub mod http;
pub mod pki;
mod pool;
pub mod read_timeout;
pub mod tls;
pub mod trace;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::Config;
use crate::log;
use crate::service::Gateway;
use crate::store::Store;
pub use conn::Shared;
use pool::BufferPool;
use trace::Tracer;

/// A bound, not yet running, gateway.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    local: SocketAddr,
    shared: Arc<Shared>,
    /// Set to stop the server; [`Server::stopper`] also wakes the accept thread.
    stop: Arc<AtomicBool>,
    /// What `ksg serve` reports at start (dev PKI made, certificate expiry, …).
    pub notices: Vec<String>,
}

/// Stops a running server from another thread (a signal handler, a test).
#[derive(Clone, Debug)]
pub struct Stopper {
    stop: Arc<AtomicBool>,
    wake: SocketAddr,
}

impl Stopper {
    /// Stops accepting, lets requests in flight finish, and makes [`Server::run`] return.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        // The accept thread blocks in accept(); a connection of our own wakes it.
        let _ = TcpStream::connect_timeout(&self.wake, Duration::from_secs(1));
    }
}

impl Server {
    /// Binds the listener and prepares TLS (making the development PKI on first use).
    pub fn bind(
        config: Arc<Config>,
        store: Option<Arc<Store>>,
        token: Option<Arc<dyn crate::token::Token>>,
        now: i64,
    ) -> Result<Server, String> {
        let sc = config.server.clone();
        let mut notices = Vec::new();
        let tls = if sc.tls_enabled {
            let files = tls::files(&sc, &config.data_dir, now)?;
            if files.dev_pki_created {
                notices.push(format!(
                    "made a development PKI in {} (CA, server and client certificates; for development only)",
                    pki::DevPki::new(&config.data_dir).dir.display()
                ));
            }
            let (tls_config, not_after) = tls::server_config(&sc, &files)?;
            if let Some(t) = not_after {
                if t < now {
                    notices.push(format!(
                        "WARNING: the server certificate {} has expired",
                        files.cert.display()
                    ));
                } else if t - now < 30 * 86_400 {
                    notices.push(format!(
                        "WARNING: the server certificate {} expires in {} days",
                        files.cert.display(),
                        (t - now) / 86_400
                    ));
                }
            }
            Some(tls_config)
        } else {
            None
        };
        if let Some(dir) = &sc.log_dir {
            std::fs::create_dir_all(dir).map_err(|e| format!("logDir {}: {e}", dir.display()))?;
        }
        let addr = SocketAddr::new(sc.listen_ip, sc.listen_port);
        let listener =
            TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        let tracer = Tracer::new(
            config.ksg.server_log_flags,
            sc.log_dir.as_deref(),
            sc.error_stream.as_deref(),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let audit = match &config.ksg.audit_log {
            Some(path) => Some(audit::AuditLog::open(path)?),
            None => None,
        };
        let shared = Arc::new(Shared {
            audit,
            gateway: Arc::new(Gateway::new(config.clone(), store, token)),
            tracer: Arc::new(tracer),
            tls,
            pool: BufferPool::new(sc.initial_buf_count, sc.grow_buf_by, sc.max_buf_size),
            conf: sc,
            stop: stop.clone(),
            connections: Default::default(),
        });
        Ok(Server {
            listener,
            local,
            shared,
            stop,
            notices,
        })
    }

    /// The address actually bound (port 0 in the conf picks a free port).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Whether the server speaks TLS.
    pub fn tls(&self) -> bool {
        self.shared.tls.is_some()
    }

    /// A handle that stops the server.
    pub fn stopper(&self) -> Stopper {
        let ip = match self.local.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        Stopper {
            stop: self.stop.clone(),
            wake: SocketAddr::new(ip, self.local.port()),
        }
    }

    /// Serves until stopped, then waits for the requests in flight and returns.
    pub fn run(self) {
        let workers = self.shared.conf.thread_count;
        let (tx, rx): (SyncSender<TcpStream>, Receiver<TcpStream>) =
            sync_channel(self.shared.conf.bounds.connection_queue);
        let rx = Arc::new(Mutex::new(rx));
        let handles: Vec<JoinHandle<()>> = (0..workers)
            .map(|n| {
                let rx = rx.clone();
                let shared = self.shared.clone();
                std::thread::Builder::new()
                    .name(format!("ksg-worker-{n}"))
                    .spawn(move || worker(n, &shared, &rx))
                    .expect("spawn a worker thread")
            })
            .collect();
        let last_accept = Arc::new(AtomicI64::new(now()));
        let watchdog = self.accept_watchdog(last_accept.clone());
        for incoming in self.listener.incoming() {
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            last_accept.store(now(), Ordering::Relaxed);
            match incoming {
                Ok(stream) => match tx.try_send(stream) {
                    Ok(()) => {}
                    // Every worker busy and the queue full: the client is closed at once
                    // rather than left waiting without bound.
                    Err(std::sync::mpsc::TrySendError::Full(stream)) => {
                        let peer = stream
                            .peer_addr()
                            .map_or_else(|_| "?".to_string(), |p| p.to_string());
                        self.shared.tracer.error_stream(&format!(
                            "{peer}: closed: every worker is busy and the connection queue \
                             (connectionQueue = {}) is full",
                            self.shared.conf.bounds.connection_queue
                        ));
                        drop(stream);
                    }
                    Err(std::sync::mpsc::TrySendError::Disconnected(_)) => break,
                },
                Err(e) => {
                    log::warn(&format!("accept failed: {e}"));
                    // Out of descriptors and similar: back off instead of spinning.
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        drop(tx);
        for h in handles {
            let _ = h.join();
        }
        let _ = watchdog.join();
        log::info("ksg stopped");
    }

    /// The seed's acceptTimeout: a warning when no connection arrived for that long.
    fn accept_watchdog(&self, last_accept: Arc<AtomicI64>) -> JoinHandle<()> {
        let stop = self.stop.clone();
        let limit = self.shared.conf.accept_timeout.as_secs() as i64;
        let tracer = self.shared.tracer.clone();
        std::thread::spawn(move || {
            let mut warned_for = 0;
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(200));
                let last = last_accept.load(Ordering::Relaxed);
                if now() - last >= limit && warned_for != last {
                    warned_for = last;
                    let msg = format!("acceptTimeout: no new connection in {limit} s");
                    tracer.error_stream(&msg);
                    log::debug(&msg);
                }
            }
        })
    }
}

fn worker(n: usize, shared: &Shared, rx: &Mutex<Receiver<TcpStream>>) {
    loop {
        let next = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(stream) = next else { return };
        if shared.stop.load(Ordering::SeqCst) {
            // Queued but not started: nothing is in flight, close it.
            continue;
        }
        // A bug must cost one connection, never the worker or the process.
        let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            conn::serve(shared, stream, n)
        }));
        if served.is_err() {
            log::error(&format!(
                "worker {n}: a connection handler panicked; the connection was closed"
            ));
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
