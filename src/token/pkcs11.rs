//! The PKCS#11 backend, through cryptoki: one shared `Pkcs11` context, a pool of sessions (a
//! `Session` is Send but not Sync, so each call checks one out for itself), logged in once.
//!
//! When the token reports a lost session or device (session handle invalid or closed, device
//! removed or in error, token not present, library not initialised, user not logged in), the
//! backend re-initialises what it must, opens a fresh session, logs in and retries the call once;
//! then the error goes up with the name of the C function that failed. With tracing on, every
//! call is logged with its function, slot, session, mechanism, return value and duration — never
//! a PIN, a key value or plaintext.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::Instant;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};

/// CK_AES_CTR_PARAMS.
#[repr(C)]
struct AesCtrParams {
    counter_bits: std::os::raw::c_ulong,
    cb: [u8; 16],
}
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use super::{
    Attr, AttrType, Class, Handle, Hash, KeyType, Mech, Result, Stream, StreamKind, Token,
    TokenError,
};

/// The session a stream runs on. Dropped unfinished, it is closed (its operation with it) and
/// no longer counted — unless the library was re-initialised since it was opened: its handle may
/// then name a newer session, which must not be closed, so it is only forgotten (the
/// re-initialisation reset the counts).
struct PinnedSession {
    session: Option<Session>,
    generation: u64,
    current: Arc<AtomicU64>,
    gate: Arc<RwLock<()>>,
    opened: Arc<AtomicUsize>,
    pinned: Arc<AtomicUsize>,
}

/// Takes one from a count without wrapping below zero.
/// Whether a template makes a session object (CKA_TOKEN is false unless set).
fn is_session_object(t: &[Attr]) -> bool {
    !t.contains(&Attr::Token(true))
}

fn count_down(n: &AtomicUsize) {
    let _ = n.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
}

impl PinnedSession {
    fn stale(&self) -> bool {
        self.generation != self.current.load(Ordering::Acquire)
    }

    /// The session back for the pool, no longer pinned (callers hold the gate and checked
    /// that the session is not stale).
    fn release(&mut self) -> Option<Session> {
        let s = self.session.take()?;
        count_down(&self.pinned);
        Some(s)
    }
}

/// The live session of a stream this token began (callers hold the shared gate, so the
/// generation cannot change under them).
fn pinned_session(stream: &mut Stream) -> Result<&mut PinnedSession> {
    let Some(p) = stream.state.downcast_mut::<PinnedSession>() else {
        return Err(TokenError::Unsupported("a stream of another token".into()));
    };
    if p.stale() {
        return Err(TokenError::Unavailable(
            "the token was re-initialised, which ended this streaming operation".into(),
        ));
    }
    Ok(p)
}

impl Drop for PinnedSession {
    fn drop(&mut self) {
        let Some(s) = self.session.take() else {
            return;
        };
        if self.stale() {
            std::mem::forget(s);
            return;
        }
        // Closing under the shared gate, so no re-initialisation runs meanwhile (a stale
        // session is forgotten above without it: callers may hold the gate already).
        let _shared = self.gate.read().unwrap_or_else(|p| p.into_inner());
        if self.stale() {
            std::mem::forget(s);
            return;
        }
        drop(s);
        count_down(&self.pinned);
        count_down(&self.opened);
    }
}
use crate::log;

/// How much of the PKCS#11 traffic is logged (`ksg.conf` key `pkcs11Trace`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Trace {
    /// Nothing.
    Off,
    /// Failed calls.
    Error,
    /// Every call, one line each.
    Info,
    /// Every call, with templates (attribute types, never values).
    Debug,
}

impl Trace {
    /// The level named `s` (off, error, info, debug).
    pub fn parse(s: &str) -> Option<Trace> {
        Some(match s {
            "off" | "0" => Trace::Off,
            "error" => Trace::Error,
            "info" => Trace::Info,
            "debug" => Trace::Debug,
            _ => return None,
        })
    }
}

/// Which slot to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotChoice {
    /// A slot ID as given (HSM_slotid).
    Id(u64),
    /// The slot whose token has this label (SoftHSM2 renumbers slots after token init).
    Label(String),
}

/// What the backend needs to reach a token.
#[derive(Clone, Debug)]
pub struct Config {
    /// The PKCS#11 module.
    pub module: PathBuf,
    /// The slot.
    pub slot: SlotChoice,
    /// The user PIN (never logged).
    pub pin: Option<crate::config::Secret>,
    /// Call tracing.
    pub trace: Trace,
}

/// A session lost this way is replaced by a fresh one and the call tried again.
fn session_lost(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::SessionHandleInvalid | RvError::SessionClosed | RvError::UserNotLoggedIn
    )
}

/// Return values that may mean the token itself has gone: the gateway then asks the token for
/// its information (C_GetTokenInfo) and re-initialises the library if that fails too. A healthy
/// token gives some of them for ordinary reasons (SoftHSM2 reports a wrong GCM tag as a general
/// error, a destroyed object as an invalid handle), so the check comes first.
fn token_suspect(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::GeneralError
            | RvError::FunctionFailed
            | RvError::DeviceRemoved
            | RvError::DeviceError
            | RvError::DeviceMemory
            | RvError::TokenNotPresent
            | RvError::TokenNotRecognized
            | RvError::SlotIdInvalid
            | RvError::CryptokiNotInitialized
            | RvError::ObjectHandleInvalid
    )
}

/// While the token is unreachable, the library is re-initialised at most this often; requests
/// in between fail at once.
const REINIT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a caller waiting for a session sleeps before it looks at the session count again.
const SESSION_WAIT_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// Idle sessions, and how many callers wait for one.
#[derive(Default)]
struct Pool {
    idle: Vec<Session>,
    waiting: usize,
}

/// The handles given out: opaque numbers that are never reused, so a handle from before a
/// re-initialisation cannot name an object the token numbered the same way afterwards.
#[derive(Default)]
struct HandleTable {
    next: u64,
    native: std::collections::HashMap<u64, ObjectHandle>,
    ours: std::collections::HashMap<u64, u64>,
}

impl HandleTable {
    fn give(&mut self, o: ObjectHandle) -> Handle {
        if let Some(h) = self.ours.get(&o.handle()) {
            return Handle(*h);
        }
        self.next += 1;
        self.native.insert(self.next, o);
        self.ours.insert(o.handle(), self.next);
        Handle(self.next)
    }

    fn clear(&mut self) {
        self.native.clear();
        self.ours.clear();
    }
}

/// Since when the token has not answered, and when the library was last re-initialised to
/// reach it.
struct Outage {
    since: Instant,
    last_try: Instant,
}

/// A PKCS#11 token.
pub struct Pkcs11Token {
    ctx: Pkcs11,
    choice: SlotChoice,
    slot: Mutex<Slot>,
    pin: Option<AuthPin>,
    pool: Mutex<Pool>,
    opened: Arc<AtomicUsize>,
    /// Sessions held by streams; at most half the sessions, so one-shot calls always get one.
    pinned: Arc<AtomicUsize>,
    max_sessions: usize,
    available: Condvar,
    trace: Trace,
    recoveries: AtomicU64,
    /// Read on every call naming an object, written when the token makes or destroys one.
    handles: RwLock<HandleTable>,
    /// Calls hold it shared; a re-initialisation holds it alone, since C_Finalize must not run
    /// under a call in flight.
    gate: Arc<RwLock<()>>,
    /// Counts re-initialisations (see [`Token::generation`]).
    generation: Arc<AtomicU64>,
    outage: Mutex<Option<Outage>>,
    /// Whether `outage` is set: read by every call, so a healthy token costs no lock.
    in_outage: std::sync::atomic::AtomicBool,
    /// A session kept open, so the session count never drops to zero: SoftHSM2 (like some
    /// HSMs) logs out and invalidates object handles when the last session closes. Session
    /// objects are made in it: closing a session destroys the session objects it made, and a
    /// pooled session closes when a stream is abandoned or the session is lost.
    anchor: Mutex<Option<Session>>,
}

impl std::fmt::Debug for Pkcs11Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Pkcs11Token(slot {}, sessions {})",
            self.slot().id(),
            self.opened.load(Ordering::Relaxed)
        )
    }
}

fn call_err(function: &str, e: CkError) -> TokenError {
    match e {
        CkError::Pkcs11(rv, _) => TokenError::Call {
            function: function.to_string(),
            rv,
        },
        other => TokenError::Setup(format!("{function}: {other}")),
    }
}

fn rv_of(e: &CkError) -> Option<RvError> {
    match e {
        CkError::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

fn init(ctx: &Pkcs11) -> Result<()> {
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(e) => Err(call_err("C_Initialize", e)),
    }
}

/// Loads `module` and lists (slot id, token label) of the slots that hold a token.
pub fn list_slots(module: &Path) -> Result<(Pkcs11, Vec<(Slot, String)>)> {
    let ctx = Pkcs11::new(module)
        .map_err(|e| TokenError::Setup(format!("cannot load {}: {e}", module.display())))?;
    init(&ctx)?;
    let slots = labelled_slots(&ctx)?;
    Ok((ctx, slots))
}

fn labelled_slots(ctx: &Pkcs11) -> Result<Vec<(Slot, String)>> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| call_err("C_GetSlotList", e))?;
    let mut out = Vec::new();
    for s in slots {
        let info = ctx
            .get_token_info(s)
            .map_err(|e| call_err("C_GetTokenInfo", e))?;
        out.push((s, info.label().trim().to_string()));
    }
    Ok(out)
}

/// The slot `choice` names among those holding a token.
fn find_slot(ctx: &Pkcs11, choice: &SlotChoice) -> Result<Slot> {
    let found = labelled_slots(ctx)?;
    match choice {
        SlotChoice::Id(id) => found.iter().find(|(s, _)| s.id() == *id).map(|(s, _)| *s),
        SlotChoice::Label(l) => found.iter().find(|(_, label)| label == l).map(|(s, _)| *s),
    }
    .ok_or_else(|| TokenError::Setup(format!("no token in slot {choice:?} (found {found:?})")))
}

/// What became of a call.
enum Attempt<T> {
    Done(T),
    /// Failed with this return value; the token was checked when the value was suspect.
    Failed(CkError, Option<RvError>, Health),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Health {
    Good,
    SessionLost,
    TokenGone,
}

impl Pkcs11Token {
    /// Loads the module, finds the slot and logs in.
    pub fn open(config: &Config) -> Result<Pkcs11Token> {
        let (ctx, _) = list_slots(&config.module)?;
        let slot = find_slot(&ctx, &config.slot)?;
        let info = ctx
            .get_token_info(slot)
            .map_err(|e| call_err("C_GetTokenInfo", e))?;
        let max = match info.max_rw_session_count() {
            cryptoki::slot::Limit::Max(n) if n > 0 => (n as usize).min(256),
            _ => 256,
        };
        let token = Pkcs11Token {
            ctx,
            choice: config.slot.clone(),
            slot: Mutex::new(slot),
            pin: config.pin.as_ref().map(|p| AuthPin::new(p.expose().into())),
            pool: Mutex::new(Pool::default()),
            opened: Arc::new(AtomicUsize::new(0)),
            pinned: Arc::new(AtomicUsize::new(0)),
            max_sessions: max,
            available: Condvar::new(),
            trace: config.trace,
            recoveries: AtomicU64::new(0),
            handles: RwLock::new(HandleTable::default()),
            gate: Arc::new(RwLock::new(())),
            generation: Arc::new(AtomicU64::new(0)),
            outage: Mutex::new(None),
            in_outage: std::sync::atomic::AtomicBool::new(false),
            anchor: Mutex::new(None),
        };
        token.open_anchor()?;
        Ok(token)
    }

    /// How many times a lost session or device was recovered from.
    pub fn recoveries(&self) -> u64 {
        self.recoveries.load(Ordering::Relaxed)
    }

    /// For tests: C_Finalize behind the pool's back, as a device reset would, closing every
    /// session and logging out. It waits for calls in flight (a library must not be finalised
    /// under them; a device that resets does not destroy the library's own locks).
    pub fn simulate_device_reset(&self) {
        let _alone = self.gate.write().unwrap_or_else(|p| p.into_inner());
        let _ = self.ctx.clone().finalize();
    }

    /// The PKCS#11 context (for tools and benchmarks that compare with raw calls).
    pub fn context(&self) -> &Pkcs11 {
        &self.ctx
    }

    /// The slot in use.
    pub fn slot(&self) -> Slot {
        *self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn open_anchor(&self) -> Result<()> {
        let s = self
            .ctx
            .open_rw_session(self.slot())
            .map_err(|e| call_err("C_OpenSession", e))?;
        match s.login(UserType::User, self.pin.as_ref()) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(call_err("C_Login", e)),
        }
        *self.anchor.lock().unwrap_or_else(|p| p.into_inner()) = Some(s);
        Ok(())
    }

    fn new_session(&self) -> cryptoki::error::Result<Session> {
        let s = self.ctx.open_rw_session(self.slot())?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        match s.login(UserType::User, self.pin.as_ref()) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(s),
            Err(e) => {
                self.discard(s);
                Err(e)
            }
        }
    }

    fn checkout(&self) -> cryptoki::error::Result<Session> {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(s) = pool.idle.pop() {
                return Ok(s);
            }
            if self.opened.load(Ordering::Relaxed) < self.max_sessions {
                drop(pool);
                return self.new_session();
            }
            pool.waiting += 1;
            // Bounded: a stream's session closes without telling the pool (it holds no
            // reference to it), so a waiter looks at the count again now and then.
            pool = self
                .available
                .wait_timeout(pool, SESSION_WAIT_POLL)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            pool.waiting -= 1;
        }
    }

    fn checkin(&self, s: Session) {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        pool.idle.push(s);
        // A notification is a system call: made only when a caller waits.
        if pool.waiting > 0 {
            self.available.notify_one();
        }
    }

    fn discard(&self, s: Session) {
        drop(s);
        // Under the pool's lock, so a caller that has just seen every session in use is
        // waiting already when it is told.
        let _pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        count_down(&self.opened);
        self.available.notify_one();
    }

    /// Whether the token still answers (C_GetTokenInfo is cheap and changes nothing).
    fn token_answers(&self) -> bool {
        self.ctx.get_token_info(self.slot()).is_ok()
    }

    /// Whether the token is known to be unreachable: `Some(true)` when the last attempt to reach
    /// it was less than [`REINIT_INTERVAL`] ago, `Some(false)` when another is due.
    fn outage_state(&self) -> Option<bool> {
        self.outage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|o| o.last_try.elapsed() < REINIT_INTERVAL)
    }

    fn still_unavailable() -> TokenError {
        TokenError::Unavailable("the token did not answer at the last attempt".into())
    }

    /// Fails at once while the token is known to be unreachable and the next re-initialisation
    /// is not due; re-initialises when it is.
    fn check_outage(&self) -> Result<()> {
        if !self.in_outage.load(Ordering::Acquire) {
            return Ok(());
        }
        match self.outage_state() {
            None => Ok(()),
            Some(true) => Err(Self::still_unavailable()),
            Some(false) => self.reinitialise(self.generation.load(Ordering::Acquire)),
        }
    }

    /// C_Finalize, C_Initialize, find the slot again, log in: what brings back a token that
    /// went away (SoftHSM2 reads its token directory again; a network HSM reconnects). Skipped
    /// when another thread did it since generation `seen`. Every handle and session from before
    /// becomes invalid, so the generation goes up.
    fn reinitialise(&self, seen: u64) -> Result<()> {
        let _alone = self.gate.write().unwrap_or_else(|p| p.into_inner());
        if self.outage_state() == Some(true) {
            // Another thread tried a moment ago and the token did not answer.
            return Err(Self::still_unavailable());
        }
        if self.generation.load(Ordering::Acquire) != seen {
            return Ok(());
        }
        self.recoveries.fetch_add(1, Ordering::Relaxed);
        // The old sessions are forgotten, not closed: C_Finalize ends them all, and closing one
        // on a dead device could wait for a timeout with every caller queued behind.
        let stale: Vec<Session> =
            std::mem::take(&mut self.pool.lock().unwrap_or_else(|p| p.into_inner()).idle);
        stale.into_iter().for_each(std::mem::forget);
        if let Some(anchor) = self.anchor.lock().unwrap_or_else(|p| p.into_inner()).take() {
            std::mem::forget(anchor);
        }
        // Sessions still pinned by streams are forgotten when their streams end.
        self.opened.store(0, Ordering::Relaxed);
        self.pinned.store(0, Ordering::Relaxed);
        self.handles
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.generation.fetch_add(1, Ordering::AcqRel);
        let _ = self.ctx.clone().finalize();
        let result = init(&self.ctx)
            .and_then(|()| find_slot(&self.ctx, &self.choice))
            .and_then(|slot| {
                *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = slot;
                self.open_anchor()
            });
        let mut outage = self.outage.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match result {
            Ok(()) => {
                self.in_outage.store(false, Ordering::Release);
                if let Some(o) = outage.take() {
                    log::warn(&format!(
                        "PKCS#11: the token answers again after {} s",
                        o.since.elapsed().as_secs()
                    ));
                } else {
                    log::warn("PKCS#11: the library was re-initialised and the token answers");
                }
                Ok(())
            }
            Err(e) => {
                if outage.is_none() {
                    log::error(&format!(
                        "PKCS#11: the token is unavailable ({e}); retrying every {} s",
                        REINIT_INTERVAL.as_secs()
                    ));
                }
                let since = outage.as_ref().map_or(now, |o| o.since);
                *outage = Some(Outage {
                    since,
                    last_try: now,
                });
                self.in_outage.store(true, Ordering::Release);
                self.available.notify_all();
                Err(TokenError::Unavailable(e.to_string()))
            }
        }
    }

    /// One try of `f` on a pooled session, under the shared gate.
    fn attempt<T>(
        &self,
        function: &'static str,
        mech: Option<&Mech>,
        f: &impl Fn(&Session) -> cryptoki::error::Result<T>,
    ) -> Attempt<T> {
        let _shared = self.gate.read().unwrap_or_else(|p| p.into_inner());
        let session = match self.checkout() {
            Ok(s) => s,
            Err(e) => {
                let rv = rv_of(&e);
                let gone = rv.is_some_and(|rv| {
                    session_lost(rv) || (token_suspect(rv) && !self.token_answers())
                });
                let health = if gone {
                    Health::TokenGone
                } else {
                    Health::Good
                };
                return Attempt::Failed(e, rv, health);
            }
        };
        let (result, rv) = self.traced(function, &session, mech, f);
        match result {
            Ok(v) => {
                self.checkin(session);
                Attempt::Done(v)
            }
            Err(e) => {
                let health = self.health_after(rv);
                if health == Health::Good {
                    self.checkin(session);
                } else {
                    self.discard(session);
                }
                Attempt::Failed(e, rv, health)
            }
        }
    }

    /// What a call that failed with `rv` says of its session and the token.
    fn health_after(&self, rv: Option<RvError>) -> Health {
        match rv {
            Some(rv) if session_lost(rv) => Health::SessionLost,
            Some(rv) if token_suspect(rv) && !self.token_answers() => Health::TokenGone,
            _ => Health::Good,
        }
    }

    /// Runs `f` on a session. A lost session is replaced and the call tried again; a token that
    /// stopped answering gets the library re-initialised and the call tried once more. Object
    /// handles resolved inside `f` from before a re-initialisation no longer resolve, so a call
    /// on an object fails with ObjectHandleInvalid and the caller looks the object up again
    /// (see [`Token::generation`]).
    fn run<T>(
        &self,
        function: &'static str,
        mech: Option<&Mech>,
        f: impl Fn(&Session) -> cryptoki::error::Result<T>,
    ) -> Result<T> {
        self.check_outage()?;
        let mut session_retried = false;
        let mut reinitialised = false;
        loop {
            let seen = self.generation.load(Ordering::Acquire);
            match self.attempt(function, mech, &f) {
                Attempt::Done(v) => return Ok(v),
                Attempt::Failed(_, _, Health::SessionLost) if !session_retried => {
                    session_retried = true;
                    log::warn(&format!(
                        "PKCS#11: {function} found its session lost; retrying on a new one"
                    ));
                }
                Attempt::Failed(e, _, Health::SessionLost) if self.token_answers() => {
                    // Lost again on a fresh session while the token answers (a PIN the token
                    // refuses, say): an error, not an outage.
                    return Err(call_err(function, e));
                }
                Attempt::Failed(_, Some(rv), Health::SessionLost | Health::TokenGone)
                    if !reinitialised =>
                {
                    log::warn(&format!(
                        "PKCS#11: {function} failed with {rv:?} and the token does not answer; re-initialising"
                    ));
                    reinitialised = true;
                    self.reinitialise(seen)?;
                }
                Attempt::Failed(_, _, Health::TokenGone) if reinitialised => {
                    return Err(TokenError::Unavailable(format!(
                        "{function}: the token stopped answering again"
                    )));
                }
                Attempt::Failed(e, _, _) => return Err(call_err(function, e)),
            }
        }
    }

    /// [`Pkcs11Token::run`] for a call that makes an object; a session object is made on the
    /// anchor session, where it lives until a re-initialisation. An anchor that was lost, or a
    /// token that stopped answering, gets the library re-initialised (a new anchor, and every
    /// handle to the old one's objects dropped with the generation) and the call tried once
    /// more.
    fn run_making<T>(
        &self,
        function: &'static str,
        mech: Option<&Mech>,
        made_from: &[Attr],
        f: impl Fn(&Session) -> cryptoki::error::Result<T>,
    ) -> Result<T> {
        if !is_session_object(made_from) {
            return self.run(function, mech, f);
        }
        self.check_outage()?;
        let mut reinitialised = false;
        loop {
            let (seen, result, rv) = {
                let _shared = self.gate.read().unwrap_or_else(|p| p.into_inner());
                // Read under the gate: the generation of the anchor this attempt uses.
                let seen = self.generation.load(Ordering::Acquire);
                let anchor = self.anchor.lock().unwrap_or_else(|p| p.into_inner());
                let Some(session) = anchor.as_ref() else {
                    return Err(TokenError::Unavailable(format!(
                        "{function}: the token is being re-initialised"
                    )));
                };
                let (result, rv) = self.traced(function, session, mech, &f);
                (seen, result, rv)
            };
            let e = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if self.health_after(rv) == Health::Good || reinitialised {
                return Err(call_err(function, e));
            }
            log::warn(&format!(
                "PKCS#11: {function} failed with {rv:?} on the anchor session; re-initialising"
            ));
            reinitialised = true;
            self.reinitialise(seen)?;
        }
    }

    /// Runs `f` on `session`, traced: its result and return value.
    fn traced<T>(
        &self,
        function: &'static str,
        session: &Session,
        mech: Option<&Mech>,
        f: &impl Fn(&Session) -> cryptoki::error::Result<T>,
    ) -> (cryptoki::error::Result<T>, Option<RvError>) {
        let start = Instant::now();
        let result = f(session);
        let rv = result.as_ref().err().and_then(rv_of);
        self.trace_call(function, session, mech, rv, start);
        (result, rv)
    }

    fn trace_call(
        &self,
        function: &str,
        session: &Session,
        mech: Option<&Mech>,
        rv: Option<RvError>,
        start: Instant,
    ) {
        let level = if rv.is_some() {
            Trace::Error
        } else {
            Trace::Info
        };
        if self.trace == Trace::Off || level > self.trace {
            return;
        }
        let mech = mech
            .map(|m| format!(" mechanism={m:?}"))
            .unwrap_or_default();
        let rv = rv.map_or_else(|| "OK".to_string(), |r| format!("{r:?}"));
        let line = format!(
            "pkcs11 {function} slot={} session={}{mech} rv={rv} {} us",
            self.slot().id(),
            session_id(session),
            start.elapsed().as_micros()
        );
        if level == Trace::Error {
            log::error(&line)
        } else {
            log::info(&line)
        }
    }
}

fn session_id(s: &Session) -> String {
    s.handle().to_string()
}

fn mech_type(h: Hash, hmac: bool) -> MechanismType {
    match (h, hmac) {
        (Hash::Sha1, false) => MechanismType::SHA1,
        (Hash::Sha224, false) => MechanismType::SHA224,
        (Hash::Sha256, false) => MechanismType::SHA256,
        (Hash::Sha384, false) => MechanismType::SHA384,
        (Hash::Sha512, false) => MechanismType::SHA512,
        (Hash::Sha1, true) => MechanismType::SHA1_HMAC,
        (Hash::Sha224, true) => MechanismType::SHA224_HMAC,
        (Hash::Sha256, true) => MechanismType::SHA256_HMAC,
        (Hash::Sha384, true) => MechanismType::SHA384_HMAC,
        (Hash::Sha512, true) => MechanismType::SHA512_HMAC,
    }
}

fn mgf(h: Hash) -> PkcsMgfType {
    match h {
        Hash::Sha1 => PkcsMgfType::MGF1_SHA1,
        Hash::Sha224 => PkcsMgfType::MGF1_SHA224,
        Hash::Sha256 => PkcsMgfType::MGF1_SHA256,
        Hash::Sha384 => PkcsMgfType::MGF1_SHA384,
        Hash::Sha512 => PkcsMgfType::MGF1_SHA512,
    }
}

/// Calls `f` with the cryptoki form of `m` (GCM parameters borrow a mutable IV).
fn with_mechanism<T>(
    m: &Mech,
    f: impl FnOnce(&Mechanism<'_>) -> T,
) -> std::result::Result<T, TokenError> {
    Ok(match m {
        Mech::AesKeyGen => f(&Mechanism::AesKeyGen),
        Mech::Des3KeyGen => f(&Mechanism::Des3KeyGen),
        Mech::Des3Ecb => f(&Mechanism::Des3Ecb),
        Mech::Des3Cbc(iv) => f(&Mechanism::Des3Cbc(*iv)),
        Mech::Des3CbcPad(iv) => f(&Mechanism::Des3CbcPad(*iv)),
        Mech::GenericSecretKeyGen => f(&Mechanism::GenericSecretKeyGen),
        Mech::RsaKeyPairGen => f(&Mechanism::RsaPkcsKeyPairGen),
        Mech::EcKeyPairGen => f(&Mechanism::EccKeyPairGen),
        Mech::AesEcb => f(&Mechanism::AesEcb),
        Mech::AesCbc(iv) => f(&Mechanism::AesCbc(*iv)),
        Mech::AesCbcPad(iv) => f(&Mechanism::AesCbcPad(*iv)),
        Mech::AesCtr(cb) => {
            // cryptoki has no CKM_AES_CTR variant: pass CK_AES_CTR_PARAMS as they are laid out.
            let params = AesCtrParams {
                counter_bits: 128,
                cb: *cb,
            };
            f(&Mechanism::VendorDefined(VendorDefinedMechanism::new(
                MechanismType::AES_CTR,
                Some(&params),
            )))
        }
        Mech::AesGcm { iv, aad, tag_bits } => {
            let mut iv = iv.clone();
            let params = GcmParams::new(&mut iv, aad, (*tag_bits).into())
                .map_err(|e| TokenError::Unsupported(format!("GCM parameters: {e}")))?;
            f(&Mechanism::AesGcm(params))
        }
        Mech::AesKeyWrap => f(&Mechanism::AesKeyWrap),
        Mech::AesKeyWrapPad => f(&Mechanism::AesKeyWrapPad),
        Mech::RsaPkcs => f(&Mechanism::RsaPkcs),
        Mech::RsaOaep(h, m, label) => {
            let source = if label.is_empty() {
                PkcsOaepSource::empty()
            } else {
                PkcsOaepSource::data_specified(label)
            };
            let p = PkcsOaepParams::new(mech_type(*h, false), mgf(*m), source);
            f(&Mechanism::RsaPkcsOaep(p))
        }
        Mech::RsaPss { hash, salt } => {
            let p = PkcsPssParams {
                hash_alg: mech_type(*hash, false),
                mgf: mgf(*hash),
                s_len: (*salt).into(),
            };
            f(&Mechanism::RsaPkcsPss(p))
        }
        Mech::Ecdsa => f(&Mechanism::Ecdsa),
        Mech::Hmac(h) => match h {
            Hash::Sha1 => f(&Mechanism::Sha1Hmac),
            Hash::Sha224 => f(&Mechanism::Sha224Hmac),
            Hash::Sha256 => f(&Mechanism::Sha256Hmac),
            Hash::Sha384 => f(&Mechanism::Sha384Hmac),
            Hash::Sha512 => f(&Mechanism::Sha512Hmac),
        },
        Mech::Digest(h) => match h {
            Hash::Sha1 => f(&Mechanism::Sha1),
            Hash::Sha224 => f(&Mechanism::Sha224),
            Hash::Sha256 => f(&Mechanism::Sha256),
            Hash::Sha384 => f(&Mechanism::Sha384),
            Hash::Sha512 => f(&Mechanism::Sha512),
        },
    })
}

fn to_cryptoki(a: &Attr) -> Attribute {
    match a {
        Attr::Class(c) => Attribute::Class(match c {
            Class::Data => ObjectClass::DATA,
            Class::Certificate => ObjectClass::CERTIFICATE,
            Class::PublicKey => ObjectClass::PUBLIC_KEY,
            Class::PrivateKey => ObjectClass::PRIVATE_KEY,
            Class::SecretKey => ObjectClass::SECRET_KEY,
        }),
        Attr::KeyType(k) => Attribute::KeyType(match k {
            KeyType::Aes => cryptoki::object::KeyType::AES,
            KeyType::Des3 => cryptoki::object::KeyType::DES3,
            KeyType::GenericSecret => cryptoki::object::KeyType::GENERIC_SECRET,
            KeyType::Rsa => cryptoki::object::KeyType::RSA,
            KeyType::Ec => cryptoki::object::KeyType::EC,
        }),
        Attr::Token(b) => Attribute::Token(*b),
        Attr::Private(b) => Attribute::Private(*b),
        Attr::Label(l) => Attribute::Label(l.as_bytes().to_vec()),
        Attr::Id(i) => Attribute::Id(i.clone()),
        Attr::Sensitive(b) => Attribute::Sensitive(*b),
        Attr::Extractable(b) => Attribute::Extractable(*b),
        Attr::Encrypt(b) => Attribute::Encrypt(*b),
        Attr::Decrypt(b) => Attribute::Decrypt(*b),
        Attr::Sign(b) => Attribute::Sign(*b),
        Attr::Verify(b) => Attribute::Verify(*b),
        Attr::Wrap(b) => Attribute::Wrap(*b),
        Attr::Unwrap(b) => Attribute::Unwrap(*b),
        Attr::Derive(b) => Attribute::Derive(*b),
        Attr::ValueLen(n) => Attribute::ValueLen((*n).into()),
        Attr::Value(v) => Attribute::Value(v.clone()),
        Attr::ModulusBits(n) => Attribute::ModulusBits((*n).into()),
        Attr::PublicExponent(v) => Attribute::PublicExponent(v.clone()),
        Attr::Modulus(v) => Attribute::Modulus(v.clone()),
        Attr::EcParams(v) => Attribute::EcParams(v.clone()),
        Attr::EcPoint(v) => Attribute::EcPoint(v.clone()),
        Attr::Subject(v) => Attribute::Subject(v.clone()),
        Attr::Issuer(v) => Attribute::Issuer(v.clone()),
        Attr::SerialNumber(v) => Attribute::SerialNumber(v.clone()),
        Attr::CertificateX509 => {
            Attribute::CertificateType(cryptoki::object::CertificateType::X_509)
        }
        Attr::Application(a) => Attribute::Application(a.as_bytes().to_vec()),
    }
}

/// A template as cryptoki attributes: what the gateway hands the module (also what the token
/// bench's raw loop sends, to generate the very same key).
pub fn template(t: &[Attr]) -> Vec<Attribute> {
    t.iter().map(to_cryptoki).collect()
}

fn attr_type(t: AttrType) -> AttributeType {
    match t {
        AttrType::Class => AttributeType::Class,
        AttrType::KeyType => AttributeType::KeyType,
        AttrType::Label => AttributeType::Label,
        AttrType::Id => AttributeType::Id,
        AttrType::ValueLen => AttributeType::ValueLen,
        AttrType::Value => AttributeType::Value,
        AttrType::Modulus => AttributeType::Modulus,
        AttrType::PublicExponent => AttributeType::PublicExponent,
        AttrType::EcPoint => AttributeType::EcPoint,
        AttrType::EcParams => AttributeType::EcParams,
        AttrType::Sensitive => AttributeType::Sensitive,
        AttrType::Extractable => AttributeType::Extractable,
    }
}

fn from_cryptoki(a: Attribute) -> Option<Attr> {
    Some(match a {
        Attribute::Label(l) => Attr::Label(String::from_utf8_lossy(&l).into_owned()),
        Attribute::Id(i) => Attr::Id(i),
        Attribute::ValueLen(n) => Attr::ValueLen(n.into()),
        Attribute::Value(v) => Attr::Value(v),
        Attribute::Modulus(v) => Attr::Modulus(v),
        Attribute::PublicExponent(v) => Attr::PublicExponent(v),
        Attribute::EcPoint(v) => Attr::EcPoint(v),
        Attribute::EcParams(v) => Attr::EcParams(v),
        Attribute::Sensitive(b) => Attr::Sensitive(b),
        Attribute::Extractable(b) => Attr::Extractable(b),
        Attribute::Class(c) => Attr::Class(match c {
            ObjectClass::DATA => Class::Data,
            ObjectClass::CERTIFICATE => Class::Certificate,
            ObjectClass::PUBLIC_KEY => Class::PublicKey,
            ObjectClass::PRIVATE_KEY => Class::PrivateKey,
            ObjectClass::SECRET_KEY => Class::SecretKey,
            _ => return None,
        }),
        Attribute::KeyType(k) => Attr::KeyType(match k {
            cryptoki::object::KeyType::AES => KeyType::Aes,
            cryptoki::object::KeyType::DES3 => KeyType::Des3,
            cryptoki::object::KeyType::GENERIC_SECRET => KeyType::GenericSecret,
            cryptoki::object::KeyType::RSA => KeyType::Rsa,
            cryptoki::object::KeyType::EC => KeyType::Ec,
            _ => return None,
        }),
        _ => return None,
    })
}

impl Pkcs11Token {
    /// The cryptoki handle behind an opaque [`Handle`] (cryptoki hands out handles only from
    /// its own calls, so the ones we gave out are remembered).
    fn oh(&self, h: Handle) -> cryptoki::error::Result<ObjectHandle> {
        self.handles
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .native
            .get(&h.0)
            .copied()
            .ok_or(CkError::Pkcs11(
                RvError::ObjectHandleInvalid,
                cryptoki::context::Function::GetAttributeValue,
            ))
    }

    fn hd(&self, o: ObjectHandle) -> Handle {
        self.handles
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .give(o)
    }

    fn forget(&self, h: Handle) {
        let mut table = self.handles.write().unwrap_or_else(|p| p.into_inner());
        if let Some(o) = table.native.remove(&h.0) {
            table.ours.remove(&o.handle());
        }
    }
}

impl Token for Pkcs11Token {
    fn generate_key(&self, mech: &Mech, t: &[Attr]) -> Result<Handle> {
        let t = template(t);
        self.run("C_GenerateKey", Some(mech), |s| {
            with_mechanism(mech, |m| s.generate_key(m, &t))
                .map_err(|_| {
                    CkError::Pkcs11(
                        RvError::MechanismParamInvalid,
                        cryptoki::context::Function::GenerateKey,
                    )
                })?
                .map(|o| self.hd(o))
        })
    }

    fn generate_key_pair(
        &self,
        mech: &Mech,
        public: &[Attr],
        private: &[Attr],
    ) -> Result<(Handle, Handle)> {
        let (pu, pr) = (template(public), template(private));
        self.run("C_GenerateKeyPair", Some(mech), |s| {
            with_mechanism(mech, |m| s.generate_key_pair(m, &pu, &pr))
                .map_err(|_| {
                    CkError::Pkcs11(
                        RvError::MechanismParamInvalid,
                        cryptoki::context::Function::GenerateKeyPair,
                    )
                })?
                .map(|(a, b)| (self.hd(a), self.hd(b)))
        })
    }

    fn create_object(&self, t: &[Attr]) -> Result<Handle> {
        let ck = template(t);
        // Handles are given out under the gate, so none names an object of a newer generation.
        self.run_making("C_CreateObject", None, t, |s| {
            s.create_object(&ck).map(|o| self.hd(o))
        })
    }

    fn find(&self, t: &[Attr]) -> Result<Vec<Handle>> {
        let t = template(t);
        self.run("C_FindObjects", None, |s| {
            s.find_objects(&t)
                .map(|v| v.into_iter().map(|o| self.hd(o)).collect())
        })
    }

    fn get_attributes(&self, object: Handle, wanted: &[AttrType]) -> Result<Vec<Attr>> {
        let types: Vec<AttributeType> = wanted.iter().copied().map(attr_type).collect();
        let attrs = self.run("C_GetAttributeValue", None, |s| {
            s.get_attributes(self.oh(object)?, &types)
        })?;
        Ok(attrs.into_iter().filter_map(from_cryptoki).collect())
    }

    fn set_attributes(&self, object: Handle, t: &[Attr]) -> Result<()> {
        let t = template(t);
        self.run("C_SetAttributeValue", None, |s| {
            s.update_attributes(self.oh(object)?, &t)
        })
    }

    fn copy_object(&self, object: Handle, t: &[Attr]) -> Result<Handle> {
        let ck = template(t);
        self.run_making("C_CopyObject", None, t, |s| {
            s.copy_object(self.oh(object)?, &ck).map(|o| self.hd(o))
        })
    }

    fn destroy(&self, object: Handle) -> Result<()> {
        self.run("C_DestroyObject", None, |s| {
            s.destroy_object(self.oh(object)?)
        })?;
        self.forget(object);
        Ok(())
    }

    fn encrypt(&self, key: Handle, mech: &Mech, data: &[u8]) -> Result<Vec<u8>> {
        self.run("C_Encrypt", Some(mech), |s| {
            let key = self.oh(key)?;
            with_mechanism(mech, |m| s.encrypt(m, key, data)).map_err(|_| {
                CkError::Pkcs11(
                    RvError::MechanismParamInvalid,
                    cryptoki::context::Function::Encrypt,
                )
            })?
        })
    }

    fn decrypt(&self, key: Handle, mech: &Mech, data: &[u8]) -> Result<Vec<u8>> {
        self.run("C_Decrypt", Some(mech), |s| {
            let key = self.oh(key)?;
            with_mechanism(mech, |m| s.decrypt(m, key, data)).map_err(|_| {
                CkError::Pkcs11(
                    RvError::MechanismParamInvalid,
                    cryptoki::context::Function::Decrypt,
                )
            })?
        })
    }

    fn sign(&self, key: Handle, mech: &Mech, data: &[u8]) -> Result<Vec<u8>> {
        self.run("C_Sign", Some(mech), |s| {
            let key = self.oh(key)?;
            with_mechanism(mech, |m| s.sign(m, key, data)).map_err(|_| {
                CkError::Pkcs11(
                    RvError::MechanismParamInvalid,
                    cryptoki::context::Function::Sign,
                )
            })?
        })
    }

    fn verify(&self, key: Handle, mech: &Mech, data: &[u8], signature: &[u8]) -> Result<bool> {
        self.run("C_Verify", Some(mech), |s| {
            let key = self.oh(key)?;
            let r = with_mechanism(mech, |m| s.verify(m, key, data, signature)).map_err(|_| {
                CkError::Pkcs11(
                    RvError::MechanismParamInvalid,
                    cryptoki::context::Function::Verify,
                )
            })?;
            match r {
                Ok(()) => Ok(true),
                Err(CkError::Pkcs11(RvError::SignatureInvalid | RvError::SignatureLenRange, _)) => {
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        })
    }

    fn digest_key(&self, key: Handle, hash: Hash) -> Result<Vec<u8>> {
        let m = Mech::Digest(hash);
        self.run("C_DigestKey", Some(&m), |s| {
            let key = self.oh(key)?;
            with_mechanism(&m, |mech| s.digest_init(mech)).map_err(|_| {
                CkError::Pkcs11(
                    RvError::MechanismParamInvalid,
                    cryptoki::context::Function::DigestInit,
                )
            })??;
            s.digest_key(key)?;
            s.digest_final()
        })
    }

    fn wrap_key(&self, wrapping: Handle, key: Handle, mech: &Mech) -> Result<Vec<u8>> {
        self.run("C_WrapKey", Some(mech), |s| {
            let (wrapping, key) = (self.oh(wrapping)?, self.oh(key)?);
            with_mechanism(mech, |m| s.wrap_key(m, wrapping, key)).map_err(|_| {
                CkError::Pkcs11(
                    RvError::MechanismParamInvalid,
                    cryptoki::context::Function::WrapKey,
                )
            })?
        })
    }

    fn unwrap_key(
        &self,
        unwrapping: Handle,
        mech: &Mech,
        wrapped: &[u8],
        t: &[Attr],
    ) -> Result<Handle> {
        let ck = template(t);
        self.run_making("C_UnwrapKey", Some(mech), t, |s| {
            let unwrapping = self.oh(unwrapping)?;
            with_mechanism(mech, |m| s.unwrap_key(m, unwrapping, wrapped, &ck))
                .map_err(|_| {
                    CkError::Pkcs11(
                        RvError::MechanismParamInvalid,
                        cryptoki::context::Function::UnwrapKey,
                    )
                })?
                .map(|o| self.hd(o))
        })
    }

    fn begin(&self, kind: StreamKind, key: Handle, mech: &Mech) -> Result<Stream> {
        type Init = fn(&Session, &Mechanism<'_>, ObjectHandle) -> cryptoki::error::Result<()>;
        let (function, f): (&str, Init) = match kind {
            StreamKind::Encrypt => ("C_EncryptInit", |s, m, k| s.encrypt_init(m, k)),
            StreamKind::Decrypt => ("C_DecryptInit", |s, m, k| s.decrypt_init(m, k)),
            StreamKind::Sign => ("C_SignInit", |s, m, k| s.sign_init(m, k)),
            StreamKind::Verify => ("C_VerifyInit", |s, m, k| s.verify_init(m, k)),
        };
        self.check_outage()?;
        // The operation lives in one session, checked out for the stream's lifetime; streams may
        // hold at most half the sessions, so one-shot calls never wait for a stream to end.
        if self.pinned.fetch_add(1, Ordering::Relaxed) >= self.max_sessions / 2 {
            self.pinned.fetch_sub(1, Ordering::Relaxed);
            return Err(TokenError::Unsupported(format!(
                "{} streaming operations hold token sessions, the most allowed",
                self.max_sessions / 2
            )));
        }
        let unpin = |e: TokenError| {
            self.pinned.fetch_sub(1, Ordering::Relaxed);
            e
        };
        let _shared = self.gate.read().unwrap_or_else(|p| p.into_inner());
        let generation = self.generation.load(Ordering::Acquire);
        let key = self.oh(key).map_err(|e| unpin(call_err(function, e)))?;
        let session = self
            .checkout()
            .map_err(|e| unpin(call_err("C_OpenSession", e)))?;
        let start = Instant::now();
        let r = match with_mechanism(mech, |m| f(&session, m, key)) {
            Ok(r) => r,
            Err(e) => {
                self.checkin(session);
                return Err(unpin(e));
            }
        };
        let rv = r.as_ref().err().and_then(rv_of);
        self.trace_call(function, &session, Some(mech), rv, start);
        match r {
            Ok(()) => Ok(Stream {
                kind,
                fed: 0,
                state: Box::new(PinnedSession {
                    session: Some(session),
                    generation,
                    current: self.generation.clone(),
                    gate: self.gate.clone(),
                    opened: self.opened.clone(),
                    pinned: self.pinned.clone(),
                }),
            }),
            Err(e) => {
                self.pinned.fetch_sub(1, Ordering::Relaxed);
                if rv.is_some_and(token_suspect) && !self.token_answers() {
                    self.discard(session);
                    drop(_shared);
                    // Streams are not retried (their state is on the token); the next request
                    // finds the token re-initialised, or fails at once while it stays away.
                    return Err(self
                        .reinitialise(generation)
                        .err()
                        .unwrap_or_else(|| call_err(function, e)));
                }
                self.checkin(session);
                Err(call_err(function, e))
            }
        }
    }

    fn update(&self, stream: &mut Stream, data: &[u8]) -> Result<Vec<u8>> {
        let kind = stream.kind;
        let _shared = self.gate.read().unwrap_or_else(|p| p.into_inner());
        let session = pinned_session(stream)?.session.as_ref();
        let Some(session) = session else {
            return Err(TokenError::Unsupported("a finished stream".into()));
        };
        let (function, r) = match kind {
            StreamKind::Encrypt => ("C_EncryptUpdate", session.encrypt_update(data)),
            StreamKind::Decrypt => ("C_DecryptUpdate", session.decrypt_update(data)),
            StreamKind::Sign => (
                "C_SignUpdate",
                session.sign_update(data).map(|()| Vec::new()),
            ),
            StreamKind::Verify => (
                "C_VerifyUpdate",
                session.verify_update(data).map(|()| Vec::new()),
            ),
        };
        stream.fed += data.len() as u64;
        r.map_err(|e| call_err(function, e))
    }

    fn finish(&self, mut stream: Stream, signature: Option<&[u8]>) -> Result<Vec<u8>> {
        let _shared = self.gate.read().unwrap_or_else(|p| p.into_inner());
        let Some(session) = pinned_session(&mut stream)?.release() else {
            return Err(TokenError::Unsupported("a finished stream".into()));
        };
        let (function, r) = match stream.kind {
            StreamKind::Encrypt => ("C_EncryptFinal", session.encrypt_final()),
            StreamKind::Decrypt => ("C_DecryptFinal", session.decrypt_final()),
            StreamKind::Sign => ("C_SignFinal", session.sign_final()),
            StreamKind::Verify => match session.verify_final(signature.unwrap_or_default()) {
                Ok(()) => ("C_VerifyFinal", Ok(vec![1])),
                Err(CkError::Pkcs11(RvError::SignatureInvalid | RvError::SignatureLenRange, _)) => {
                    ("C_VerifyFinal", Ok(vec![0]))
                }
                Err(e) => ("C_VerifyFinal", Err(e)),
            },
        };
        // A final call ends the operation either way, so the session is clean again.
        self.checkin(session);
        r.map_err(|e| call_err(function, e))
    }

    fn random(&self, len: usize) -> Result<Vec<u8>> {
        self.run("C_GenerateRandom", None, |s| {
            s.generate_random_vec(len as u32)
        })
    }

    fn seed_random(&self, seed: &[u8]) -> Result<usize> {
        self.run("C_SeedRandom", None, |s| s.seed_random(seed))?;
        Ok(seed.len())
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn native_handle(&self, h: Handle) -> Option<u64> {
        self.oh(h).ok().map(|o| o.handle())
    }
}
