//! The TUI's state and its one-way flow: messages in, requests out, draw.

use super::form::FormKey;
use super::keys::{Action, Keymap};
use super::oplog::OperationLog;
use super::overlay::Overlay;
use super::record_form::{Mode, RecordForm};
use super::request_form::RequestForm;
use super::revisions::Revisions;
use super::screens::{self, Tab};
use super::tabs;
use super::Theme;
use crate::domain::{
    ExecutionRequest, HostKey, Id, Kind, OpState, Operation, Record, RequestState,
};
use crate::engine::{Command, Event, HistoryFilter, ImportItem, RequestSpec, Response};
use crate::store::{AuditBreak, AuditEvent};
use crossterm::event::{KeyCode, KeyEvent, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Tabs};
use ratatui::Frame;
use std::cell::Cell;
use std::collections::BTreeMap;

/// What the UI asks the engine for.
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    List(Kind),
    /// Scheduled tasks and the requests they run under.
    Schedules,
    /// The Dashboard's numbers.
    Metrics,
    AuditTail,
    AuditVerify,
    SetEnabled {
        kind: Kind,
        name: String,
        enabled: bool,
    },
    /// Queued and running operations.
    LiveOperations,
    /// The newest operations.
    History,
    /// The page of history older than this operation.
    HistoryBefore(Id),
    /// History narrowed by a filter (paging back when it names `before`).
    HistoryFiltered(HistoryFilter),
    /// Stored output of an operation from a sequence number on.
    Output {
        id: Id,
        from: u64,
        /// With the debug trace (the pane's toggle).
        debug: bool,
    },
    Cancel(Id),
    /// Requests this user may decide now.
    Queue,
    /// JIT grants not yet revoked.
    Jit,
    /// Approves one request or a batch, with one comment (and one code).
    Approve {
        ids: Vec<Id>,
        comment: String,
        /// A TOTP code, once the engine asked for one.
        totp: Option<String>,
        /// The window narrowed to end then.
        until: Option<crate::domain::Timestamp>,
    },
    Reject {
        ids: Vec<Id>,
        comment: String,
    },
    /// How every policy judges the caller's request of a task now.
    Explain(String),
    /// The caller's own requests, newest first.
    MyRequests,
    /// Reviews emergency runs: accepted, or flagged for follow-up.
    Review {
        ids: Vec<Id>,
        accepted: bool,
        comment: String,
    },
    /// What the request form of a task needs.
    Terms(String),
    /// Send a filled request form.
    Submit(RequestSpec),
    /// Save a record from an Admin form (new, edit or clone).
    Save {
        kind: Kind,
        name: String,
        items: Vec<ImportItem>,
    },
    Delete {
        kind: Kind,
        name: String,
    },
    /// A template's revisions.
    Revisions(String),
    /// The host keys a device offers now.
    ScanHostKeys(String),
    PinHostKeys {
        device: String,
        keys: Vec<HostKey>,
    },
    /// The request behind an operation, for its detail.
    RequestOf(Id),
    /// What a request in the queue will run, device by device.
    RequestView(Id),
    /// Write the whole audit log as JSON lines to this file.
    ExportAudit(std::path::PathBuf),
    /// Change a credential's password now.
    ChangeCredential(String),
    /// Show a credential's password, with why.
    RevealCredential {
        name: String,
        justification: String,
    },
    /// Where each credential's password stands.
    CredentialStates,
    /// Sessions this user may see (History's sessions view).
    Sessions,
    /// Open a session on a device: the TUI hands the terminal over to it
    /// and takes it back when it ends.
    Connect {
        device: String,
        justification: String,
        /// A TOTP code, once the engine asked for one.
        totp: Option<String>,
    },
    /// Replay a session's recording in the terminal.
    Replay(Id),
    /// Watch an open session live in the terminal.
    Watch(Id),
    /// End an open session, saying why.
    EndSession {
        id: Id,
        reason: String,
    },
    /// The OS groups in use (under Admin's users).
    Groups,
    /// Write an operation's whole stored output to a new file.
    SaveOutput {
        id: Id,
        path: std::path::PathBuf,
    },
    /// Take the mouse (clicks and the wheel reach the TUI) or release it
    /// (the terminal's own selection works).
    MouseCapture(bool),
    /// A dry run of a pending request's playbook (Approvals, `d`).
    DryRun(Id),
    /// The servers of the store (Superusers; the Dashboard's).
    Cluster,
}

/// What the `/` line is typed into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterTarget {
    /// Search back through the log pane.
    Log,
    /// Narrow History (asks the engine).
    History,
    /// Narrow the Operations list.
    Live,
    /// Narrow the Approvals lists (waiting for you, and yours).
    Approvals,
    /// Narrow the Audit list.
    Audit,
    /// Narrow an Admin or Tasks list.
    Records(Kind),
}

/// A destructive or trust-changing action waiting for `y`.
#[derive(Clone, Debug, PartialEq)]
pub enum Confirm {
    CancelOperation(Id),
    Delete { kind: Kind, name: String },
    Trust { device: String, keys: Vec<HostKey> },
    ChangePassword { credential: String },
}

/// How many operations the History tab loads.
pub(crate) const HISTORY_PAGE: u32 = 2000;

/// How many audit events the Audit tab keeps in view.
const AUDIT_TAIL: u64 = 500;

impl Call {
    /// The engine command for this request.
    pub fn command(&self) -> Command {
        match self {
            Call::List(kind) => Command::List { kind: *kind },
            Call::ChangeCredential(name) => Command::ChangeCredential {
                name: name.clone(),
                devices: Vec::new(),
            },
            Call::RevealCredential {
                name,
                justification,
            } => Command::RevealCredential(crate::engine::api::RevealSpec {
                name: name.clone(),
                justification: justification.clone(),
                ..Default::default()
            }),
            Call::CredentialStates => Command::CredentialStates,
            Call::AuditTail => Command::AuditTail {
                limit: AUDIT_TAIL as u32,
            },
            Call::AuditVerify => Command::AuditVerify,
            Call::SetEnabled {
                kind,
                name,
                enabled,
            } => Command::SetEnabled {
                kind: *kind,
                name: name.clone(),
                enabled: *enabled,
            },
            Call::LiveOperations => Command::Operations { states: Vec::new() },
            Call::History => Command::History(HistoryFilter {
                limit: HISTORY_PAGE,
                ..HistoryFilter::default()
            }),
            Call::HistoryFiltered(filter) => Command::History(HistoryFilter {
                limit: HISTORY_PAGE,
                ..filter.clone()
            }),
            Call::HistoryBefore(id) => Command::History(HistoryFilter {
                before: Some(*id),
                limit: HISTORY_PAGE,
                ..HistoryFilter::default()
            }),
            Call::Output { id, from, debug } => Command::Output {
                id: *id,
                from: *from,
                limit: 5000,
                debug: *debug,
            },
            Call::Cancel(id) => Command::Cancel { id: *id },
            Call::Queue => Command::Queue,
            Call::Jit => Command::Jit { all: false },
            Call::Schedules => Command::Schedules,
            Call::Metrics => Command::Metrics,
            Call::Approve {
                ids,
                comment,
                totp,
                until,
            } => Command::DecideMany {
                ids: ids.clone(),
                approve: true,
                comment: comment.clone(),
                until: *until,
                totp: totp.clone(),
            },
            Call::MyRequests => Command::Requests { mine: true },
            Call::Explain(task) => Command::ExplainPolicy(crate::engine::api::ExplainSpec {
                task: task.clone(),
                ..Default::default()
            }),
            Call::Review {
                ids,
                accepted,
                comment,
            } => Command::ReviewEmergency {
                ids: ids.clone(),
                accepted: *accepted,
                comment: comment.clone(),
            },
            Call::Reject { ids, comment } => Command::DecideMany {
                ids: ids.clone(),
                approve: false,
                comment: comment.clone(),
                until: None,
                totp: None,
            },
            Call::Terms(task) => Command::RequestTerms { task: task.clone() },
            Call::Submit(spec) => Command::Request(spec.clone()),
            Call::Save { items, .. } => Command::Import {
                items: items.clone(),
            },
            Call::Delete { kind, name } => Command::Delete {
                kind: *kind,
                name: name.clone(),
            },
            Call::Revisions(name) => Command::TemplateRevisions { name: name.clone() },
            Call::ScanHostKeys(device) => Command::ScanHostKeys {
                device: device.clone(),
            },
            Call::PinHostKeys { device, keys } => Command::PinHostKeys {
                device: device.clone(),
                keys: keys.clone(),
            },
            Call::RequestOf(id) => Command::RequestOf { id: *id },
            Call::RequestView(id) => Command::RequestView { id: *id },
            // Paged by `ui::export_audit`, which reports with a status message.
            Call::ExportAudit(_) => Command::AuditExport {
                from: 1,
                limit: 1000,
            },
            Call::Sessions => Command::Sessions {
                open_only: false,
                text: None,
            },
            // These three take the terminal: `ui::take_terminal` runs them.
            Call::Connect {
                device,
                justification,
                totp,
            } => Command::Connect(crate::engine::api::ConnectSpec {
                device: device.clone(),
                justification: Some(justification.clone()).filter(|j| !j.trim().is_empty()),
                totp: totp.clone(),
                ..Default::default()
            }),
            Call::Replay(id) => Command::SessionRecording {
                id: *id,
                input: false,
            },
            Call::Watch(id) => Command::WatchSession { id: *id },
            Call::EndSession { id, reason } => Command::EndSession {
                id: *id,
                reason: reason.clone(),
            },
            Call::Groups => Command::Groups,
            Call::Cluster => Command::ClusterStatus,
            // Paged by `ui::save_output`, which reports with a status message.
            Call::SaveOutput { id, .. } => Command::Output {
                id: *id,
                from: 0,
                limit: 5000,
                debug: false,
            },
            // Done by the UI loop on the terminal; the engine is not asked.
            Call::MouseCapture(_) => Command::Whoami,
            Call::DryRun(id) => Command::DryRun { id: *id },
        }
    }
}

/// What a key did to an open form, once the form and its checks took it.
enum FormStep {
    Open,
    Closed,
    Submit,
}

/// A form on screen, with the checks it runs as fields change.
trait OpenForm {
    fn form(&mut self) -> &mut super::form::Form;
    fn changed(&mut self, field: usize);
}

impl OpenForm for RequestForm {
    fn form(&mut self) -> &mut super::form::Form {
        &mut self.form
    }
    fn changed(&mut self, field: usize) {
        RequestForm::changed(self, field)
    }
}

impl OpenForm for RecordForm {
    fn form(&mut self) -> &mut super::form::Form {
        &mut self.form
    }
    fn changed(&mut self, field: usize) {
        RecordForm::changed(self, field)
    }
}

/// Gives a key to an open form; a changed field is checked at once.
fn form_key(open: &mut impl OpenForm, key: KeyEvent) -> FormStep {
    match open.form().on_key(key) {
        FormKey::Stay => FormStep::Open,
        FormKey::Changed(i) => {
            open.changed(i);
            FormStep::Open
        }
        FormKey::Close => FormStep::Closed,
        FormKey::Submit => FormStep::Submit,
    }
}

/// What tells two history filters apart (all but the page).
pub(crate) fn filter_key(f: &HistoryFilter) -> String {
    format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        f.task, f.device, f.user, f.state, f.text, f.output
    )
}

/// Parses a History filter: `task:NAME device:NAME user:LOGIN state:STATE
/// out:TEXT` (output holding TEXT) and any other words as text to find;
/// errors name the word, and a `word:value` whose word is not one of
/// these is refused rather than searched for as text.
pub fn parse_history_filter(text: &str) -> Result<Option<HistoryFilter>, String> {
    let mut filter = HistoryFilter::default();
    let mut words = Vec::new();
    for word in text.split_whitespace() {
        match word.split_once(':') {
            Some(("task", v)) => filter.task = Some(v.to_string()),
            Some(("device", v)) => filter.device = Some(v.to_string()),
            Some(("user", v)) => filter.user = Some(v.to_string()),
            Some(("out" | "output", v)) if !v.is_empty() => {
                filter.output = Some(match filter.output.take() {
                    Some(before) => format!("{before} {v}"),
                    None => v.to_string(),
                })
            }
            Some(("state", v)) => {
                filter.state = Some(crate::domain::OpState::parse(v).ok_or_else(|| {
                    format!(
                        "state:{v}: not a state; one of {}",
                        crate::domain::OpState::ALL.map(|s| s.as_str()).join(", ")
                    )
                })?)
            }
            Some((key, v))
                if !v.is_empty() && !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase()) =>
            {
                return Err(format!(
                    "{word}: '{key}:' is not a filter; use task: device: user: state: out: or plain words"
                ))
            }
            _ => words.push(word),
        }
    }
    if !words.is_empty() {
        filter.text = Some(words.join(" "));
    }
    let empty = filter.task.is_none()
        && filter.device.is_none()
        && filter.user.is_none()
        && filter.state.is_none()
        && filter.text.is_none()
        && filter.output.is_none();
    Ok((!empty).then_some(filter))
}

/// How many rows `text` takes wrapped at word boundaries to `width`
/// (as the Paragraph wraps it; a word longer than the width is split).
fn wrapped_rows(text: &str, width: usize) -> usize {
    let mut rows = 1;
    let mut used = 0;
    for word in text.split(' ') {
        let len = word.chars().count();
        let need = if used == 0 { len } else { used + 1 + len };
        if need <= width {
            used = need;
        } else {
            rows += 1;
            used = len;
            while used > width {
                rows += 1;
                used -= width;
            }
        }
    }
    rows
}

/// A one-line input holding `text`, the cursor at its end.
pub(crate) fn line_input(text: &str) -> tui_textarea::TextArea<'static> {
    let mut input = tui_textarea::TextArea::new(vec![text.to_string()]);
    input.move_cursor(tui_textarea::CursorMove::End);
    input.set_cursor_line_style(ratatui::style::Style::default());
    input
}

/// What a one-line input holds.
fn line_text(input: &tui_textarea::TextArea) -> String {
    input.lines().first().cloned().unwrap_or_default()
}

/// Everything the loop feeds the app.
#[derive(Debug)]
// Messages move once through a channel; boxing the answers buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Message {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resized,
    Engine(Event),
    Answer(Call, Result<Response, Failure>),
    /// A message for the status line from work done off the UI loop.
    Status(String, bool),
    /// A revealed password's time on screen is up.
    HideSecret,
    /// A second without anything else (finished operations age out).
    Tick,
    Disconnected,
}

/// Why an answer did not come: the engine's refusal as the engine typed it
/// (screens match on its variants, never on its text), or the connection's.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Engine(crate::engine::EngineError),
    #[error("{0}")]
    Connection(String),
}

impl From<crate::client::ClientError> for Failure {
    fn from(e: crate::client::ClientError) -> Failure {
        match e {
            crate::client::ClientError::Engine(e) => Failure::Engine(e),
            other => Failure::Connection(other.to_string()),
        }
    }
}

impl From<&str> for Failure {
    fn from(text: &str) -> Failure {
        Failure::Connection(text.to_string())
    }
}

/// A list of records with a filter and a cursor over the records that pass it.
#[derive(Default)]
pub struct RecordList {
    pub records: Vec<Record>,
    /// Indices into `records` of those that match `filter`, in order.
    pub view: Vec<usize>,
    /// The cursor, as a position in `view`.
    pub selected: usize,
    pub filter: String,
    pub loaded: bool,
    /// Why the engine would not list these, when it would not.
    pub refused: Option<String>,
}

impl RecordList {
    pub fn selected(&self) -> Option<&Record> {
        self.view
            .get(self.selected)
            .and_then(|i| self.records.get(*i))
    }

    /// The record shown at a position of the view.
    pub fn shown(&self, position: usize) -> &Record {
        &self.records[self.view[position]]
    }

    /// Replaces the records, keeping the cursor on the same record by name.
    pub fn replace(&mut self, records: Vec<Record>) {
        let keep = self.selected().map(|r| r.name().to_string());
        self.records = records;
        self.loaded = true;
        self.refused = None;
        self.refilter();
        if let Some(name) = keep {
            if let Some(p) = self
                .view
                .iter()
                .position(|i| self.records[*i].name() == name)
            {
                self.selected = p;
            }
        }
    }

    /// Sets the filter: words that must all match, each a case-insensitive
    /// substring of the name or summary, or `tag:NAME` / `product:NAME`
    /// (a device's tag, its product).
    pub fn set_filter(&mut self, filter: &str) {
        self.filter = filter.to_string();
        self.selected = 0;
        self.refilter();
    }

    fn refilter(&mut self) {
        let needle = self.filter.to_lowercase();
        let words: Vec<&str> = needle.split_whitespace().collect();
        let matches = |r: &Record, word: &str| match (word.split_once(':'), r) {
            (Some(("tag", t)), Record::Device(d)) => d.tags.iter().any(|x| x.to_lowercase() == t),
            (Some(("product", p)), Record::Device(d)) => d.product.to_lowercase().contains(p),
            (Some(("tag" | "product", _)), _) => false,
            _ => {
                r.name().to_lowercase().contains(word) || r.summary().to_lowercase().contains(word)
            }
        };
        self.view = (0..self.records.len())
            .filter(|i| words.iter().all(|w| matches(&self.records[*i], w)))
            .collect();
        self.selected = self.selected.min(self.view.len().saturating_sub(1));
    }

    pub(crate) fn move_by(&mut self, delta: isize) {
        if self.view.is_empty() {
            self.selected = 0;
            return;
        }
        let last = self.view.len() as isize - 1;
        self.selected = (self.selected as isize)
            .saturating_add(delta)
            .clamp(0, last) as usize;
    }
}

/// The TUI's state: what all screens share (the connection's caches of
/// records, live operations, the queue; the overlays; the status line) and
/// each screen's own state, kept by that screen's type.
pub struct App {
    pub login: String,
    pub theme: Theme,
    pub tab: Tab,
    /// Each screen's own state.
    pub dashboard: screens::DashboardState,
    pub tasks: screens::TasksState,
    pub approvals: screens::ApprovalsState,
    pub operations: screens::OperationsState,
    pub history: screens::HistoryState,
    pub audit: screens::AuditState,
    pub admin: screens::AdminState,
    pub records: BTreeMap<Kind, RecordList>,
    pub audit_state: Option<Result<u64, AuditBreak>>,
    /// Why the audit log is not this user's to see (then it is not asked
    /// again, and no status line is taken over by it).
    pub audit_refused: Option<String>,
    /// The last message for the status line, and whether it is an error.
    pub status: Option<(String, bool)>,
    pub connected: bool,
    /// What the `/` filter on the overlay stack filters.
    pub filter_target: FilterTarget,
    /// Queued and running operations, newest first.
    pub live_ops: Vec<Operation>,
    /// The selected operation's output.
    pub log: OperationLog,
    /// Requests this user may decide, oldest first.
    pub queue: Vec<ExecutionRequest>,
    /// JIT grants not yet revoked.
    pub jit: Vec<crate::engine::api::JitLease>,
    /// The keys in force.
    pub keys: Keymap,
    /// Forms, dialogs, the `:` line and help over the screen; the last
    /// takes the keys.
    pub overlays: Vec<Overlay>,
    /// The server this UI talks to, for the top line ("jump1 · server gatehouse").
    pub server: String,
    /// How the tab bar was last drawn: 0 full titles, 1 short ones, 2
    /// digits with the current tab's short title (for mouse clicks).
    tabs_compact: Cell<u8>,
    /// The time the screens take as now; fixed in tests that compare screens.
    pub clock: Option<crate::domain::Timestamp>,
    /// Where the current screen's list was drawn: its rows' area, the first
    /// row shown and how many there are (for mouse clicks).
    pub list_hit: Cell<Option<(Rect, usize, usize)>>,
    quit: bool,
    /// The values a re-run's request form opens with (`R` in History).
    pub prefill: Option<crate::engine::RequestSpec>,
    /// Emergency runs seen in the queue (each rings the bell once).
    emergencies_seen: std::collections::BTreeSet<Id>,
    /// Ring the terminal's bell after the next frame.
    bell: bool,
    /// The mouse is the terminal's (its own selection works), not the TUI's.
    pub mouse_released: bool,
    /// The server is this user's personal one (it exits when idle).
    pub personal: bool,
}

/// How long an ended operation stays on the Operations screen.
pub const KEEP_FINISHED_MS: i64 = 120_000;

/// The smallest terminal the layout works in.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 15;

impl App {
    pub fn new(login: String, theme: Theme) -> App {
        App {
            login,
            theme,
            tab: Tab::Dashboard,
            dashboard: Default::default(),
            approvals: Default::default(),
            tasks: Default::default(),
            operations: Default::default(),
            history: Default::default(),
            audit: Default::default(),
            admin: Default::default(),
            records: BTreeMap::new(),
            audit_state: None,
            audit_refused: None,
            status: None,
            connected: true,
            filter_target: FilterTarget::Log,
            live_ops: Vec::new(),
            log: OperationLog::default(),
            queue: Vec::new(),
            jit: Vec::new(),
            keys: Keymap::default(),
            overlays: Vec::new(),
            list_hit: Cell::new(None),
            clock: None,
            server: String::new(),
            tabs_compact: Cell::new(0),
            quit: false,
            emergencies_seen: Default::default(),
            prefill: None,
            bell: false,
            mouse_released: false,
            personal: false,
        }
    }

    /// What to load when the UI opens.
    pub fn start(&mut self) -> Vec<Call> {
        let mut requests: Vec<Call> = Kind::ALL.iter().map(|k| Call::List(*k)).collect();
        requests.push(Call::AuditTail);
        requests.push(Call::AuditVerify);
        requests.push(Call::LiveOperations);
        requests.push(Call::History);
        requests.push(Call::Queue);
        requests.push(Call::MyRequests);
        requests.push(Call::Jit);
        requests.push(Call::Schedules);
        requests.push(Call::Cluster);
        requests.extend(self.ask_metrics());
        requests
    }

    /// Asks for the Dashboard's numbers unless an answer is on its way
    /// (then they are asked again when it comes).
    pub(crate) fn ask_metrics(&mut self) -> Option<Call> {
        if self.dashboard.in_flight {
            self.dashboard.stale = true;
            None
        } else {
            self.dashboard.in_flight = true;
            self.dashboard.stale = false;
            Some(Call::Metrics)
        }
    }

    /// The operation the current screen has selected.
    pub fn selected_operation(&self) -> Option<&Operation> {
        screens::of(self.tab).selected_operation(self)
    }

    /// Points the log pane at the selected operation, loading its output.
    fn sync_log(&mut self) -> Vec<Call> {
        let Some(id) = self.selected_operation().map(|o| o.id) else {
            return Vec::new();
        };
        if self.log.op == Some(id) {
            return Vec::new();
        }
        self.log.select(id);
        vec![Call::Output {
            id,
            from: 0,
            debug: self.log.debug,
        }]
    }

    /// Whether this operation is known to have ended already (an older
    /// copy, say the submit's answer arriving after the run's events, must
    /// not bring it back to life).
    fn known_final(&self, id: Id) -> bool {
        self.live_ops
            .iter()
            .chain(self.history.ops.iter())
            .any(|o| o.id == id && o.state.is_final())
    }

    fn on_operation(&mut self, op: Operation) {
        if !op.state.is_final() && self.known_final(op.id) {
            return;
        }
        let keep = self.selected_live().map(|o| o.id);
        let was_live = self.live_ops.iter().any(|o| o.id == op.id);
        self.live_ops.retain(|o| o.id != op.id);
        // A finished operation stays on the Operations screen (dimmed) for
        // a while, so that its end is seen where it ran.
        if !op.state.is_final() || was_live || self.recently_finished(&op) {
            let at = self
                .live_ops
                .iter()
                .position(|o| o.id < op.id)
                .unwrap_or(self.live_ops.len());
            self.live_ops.insert(at, op.clone());
        }
        self.keep_live_selection(keep);
        match self.history.ops.iter().position(|o| o.id == op.id) {
            Some(p) => self.history.ops[p] = op.clone(),
            None => {
                let at = self
                    .history
                    .ops
                    .iter()
                    .position(|o| o.id < op.id)
                    .unwrap_or(self.history.ops.len());
                self.history.ops.insert(at, op.clone());
                if at <= self.history.selected
                    && self.history.ops.len() > 1
                    && self.tab == Tab::History
                {
                    self.history.selected += 1;
                }
            }
        }
        self.on_request_progress(op.request);
    }

    /// The Operations list as shown: every live or lately ended operation
    /// whose id, request, task, device, requester or state holds every
    /// word of the filter.
    pub fn live_view(&self) -> Vec<&Operation> {
        let words: Vec<String> = self
            .operations
            .filter
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        self.live_ops
            .iter()
            .filter(|o| {
                words.is_empty() || {
                    let hay = format!(
                        "{} request:{} {} {} {} {}",
                        o.id, o.request, o.task, o.device, o.requested_by, o.state
                    )
                    .to_lowercase();
                    words.iter().all(|w| hay.contains(w.as_str()))
                }
            })
            .collect()
    }

    /// The operation selected on the Operations screen.
    pub fn selected_live(&self) -> Option<&Operation> {
        self.live_view().get(self.operations.selected).copied()
    }

    /// The Approvals lists through the filter: a request is listed when
    /// its id, task, requester, state, devices or justification hold every
    /// word. Marks on requests the filter hides are dropped (a batch
    /// decides only what is in view).
    pub(crate) fn refilter_approvals(&mut self) {
        let words: Vec<String> = self
            .approvals
            .filter
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        let keep = |r: &&ExecutionRequest| {
            words.is_empty() || {
                let hay = format!(
                    "{} {} {} {} {} {}",
                    r.id,
                    r.what(),
                    r.requester,
                    r.state,
                    r.devices.join(" "),
                    r.justification.as_deref().unwrap_or("")
                )
                .to_lowercase();
                words.iter().all(|w| hay.contains(w.as_str()))
            }
        };
        self.queue = self
            .approvals
            .queue_all
            .iter()
            .filter(keep)
            .cloned()
            .collect();
        self.approvals.mine = self
            .approvals
            .mine_all
            .iter()
            .filter(keep)
            .cloned()
            .collect();
        let shown: std::collections::BTreeSet<Id> = self.queue.iter().map(|r| r.id).collect();
        self.approvals.marked.retain(|id| shown.contains(id));
        self.approvals.selected = self
            .approvals
            .selected
            .min(self.queue.len().saturating_sub(1));
        self.approvals.mine_selected = self
            .approvals
            .mine_selected
            .min(self.approvals.mine.len().saturating_sub(1));
    }

    /// Whether an ended operation ended recently enough to stay listed.
    fn recently_finished(&self, op: &Operation) -> bool {
        op.finished_at
            .is_some_and(|t| self.now().0.saturating_sub(t.0) < KEEP_FINISHED_MS)
    }

    /// Drops the operations that ended longer ago than they stay listed.
    fn age_out_finished(&mut self) {
        let keep = self.selected_live().map(|o| o.id);
        let now = self.now().0;
        self.live_ops.retain(|o| {
            !o.state.is_final()
                || o.finished_at
                    .is_some_and(|t| now.saturating_sub(t.0) < KEEP_FINISHED_MS)
        });
        self.keep_live_selection(keep);
    }

    /// The cursor stays on the operation it was on, wherever that moved.
    fn keep_live_selection(&mut self, keep: Option<Id>) {
        let view: Vec<Id> = self.live_view().iter().map(|o| o.id).collect();
        if let Some(p) = keep.and_then(|k| view.iter().position(|id| *id == k)) {
            self.operations.selected = p;
        }
        self.operations.selected = self.operations.selected.min(view.len().saturating_sub(1));
    }

    /// How a request's run stands, from every operation of it this UI
    /// knows (the live list and the loaded history).
    pub fn progress(&self, request: Id) -> screens::Progress {
        let mut seen = std::collections::BTreeSet::new();
        let mut p = screens::Progress {
            request,
            ..Default::default()
        };
        for o in self.live_ops.iter().chain(self.history.ops.iter()) {
            if o.request != request || !seen.insert(o.id) {
                continue;
            }
            if p.task.is_empty() {
                p.task = o.task.clone();
            }
            p.total += 1;
            match o.state {
                OpState::Succeeded => p.done += 1,
                OpState::Skipped => {
                    p.done += 1;
                    p.skipped += 1;
                }
                OpState::Failed | OpState::Interrupted | OpState::Cancelled => p.failed += 1,
                OpState::Running | OpState::Retrying => p.running += 1,
                OpState::Queued => p.queued += 1,
            }
            let start = o.started_at.unwrap_or(o.created_at);
            p.started = Some(
                p.started
                    .map_or(start, |s: crate::domain::Timestamp| s.min(start)),
            );
            if let Some(f) = o.finished_at {
                p.finished = Some(p.finished.map_or(f, |e: crate::domain::Timestamp| e.max(f)));
            }
        }
        p
    }

    /// Once every operation of the request the status line says is
    /// running has ended, the status line says how it ended.
    fn on_request_progress(&mut self, request: Id) {
        if self.operations.watching != Some(request) {
            return;
        }
        let p = self.progress(request);
        if p.total == 0 || p.done + p.failed < p.total {
            return;
        }
        self.operations.watching = None;
        let skipped = match p.skipped {
            0 => String::new(),
            n => format!(", {n} skipped (nothing to do)"),
        };
        self.status = Some((
            format!(
                "request {request} finished: {} succeeded{skipped}, {} failed (R re-runs)",
                p.done - p.skipped,
                p.failed
            ),
            p.failed > 0,
        ));
    }

    /// What to say when the TUI quits: a personal server that stays up
    /// (for scheduled tasks, open JIT grants or running operations) says
    /// why, and how to stop it.
    pub fn farewell(&self) -> Option<String> {
        if !self.personal {
            return None;
        }
        let mut why = Vec::new();
        let scheduled: Vec<String> = self
            .list(Kind::Task)
            .map(|l| {
                l.records
                    .iter()
                    .filter_map(|r| match r {
                        Record::Task(t) if t.meta.enabled => t
                            .schedule
                            .as_ref()
                            .map(|s| format!("{} ({s})", t.meta.name)),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !scheduled.is_empty() {
            why.push(format!("scheduled tasks {}", scheduled.join(", ")));
        }
        if !self.jit.is_empty() {
            why.push(format!("{} JIT grant(s) to revoke", self.jit.len()));
        }
        let running = self.live_ops.iter().filter(|o| !o.state.is_final()).count();
        if running > 0 {
            why.push(format!("{running} operation(s) running or queued"));
        }
        if why.is_empty() {
            return None;
        }
        Some(format!(
            "your personal server keeps running in the background for {}; `gatehouse shutdown` stops it",
            why.join(", ")
        ))
    }

    /// Now, as the screens see it.
    pub fn now(&self) -> crate::domain::Timestamp {
        self.clock.unwrap_or_else(crate::domain::Timestamp::now)
    }

    pub fn should_quit(&self) -> bool {
        self.quit
    }

    /// Whether every one of these requests in the queue is an emergency run.
    pub(crate) fn all_emergencies(&self, ids: &[Id]) -> bool {
        !ids.is_empty()
            && ids.iter().all(|id| {
                self.queue
                    .iter()
                    .any(|r| r.id == *id && r.state == RequestState::Emergency)
            })
    }

    /// Whether to ring the terminal's bell now (once per new emergency).
    pub fn take_bell(&mut self) -> bool {
        std::mem::take(&mut self.bell)
    }

    /// The kind the Admin tab shows.
    pub fn admin_kind(&self) -> Kind {
        Kind::ALL[self.admin.kind % Kind::ALL.len()]
    }

    pub fn list(&self, kind: Kind) -> Option<&RecordList> {
        self.records.get(&kind)
    }

    /// Applies one message; returns what to ask the engine.
    pub fn update(&mut self, message: Message) -> Vec<Call> {
        // The one door: nothing from outside is kept unscreened.
        match super::outside::screen(message) {
            Message::Key(key) => self.on_key(key),
            Message::Mouse(mouse) => self.on_mouse(mouse),
            Message::Resized => Vec::new(),
            Message::Status(text, is_error) => {
                self.status = Some((text, is_error));
                Vec::new()
            }
            Message::Tick => {
                self.age_out_finished();
                // A shared store's servers come and go: asked again while idle.
                if self.tab == Tab::Dashboard
                    && self.dashboard.cluster.as_ref().is_some_and(|c| c.shared)
                {
                    return vec![Call::Cluster];
                }
                Vec::new()
            }
            Message::HideSecret => {
                if self.admin.revealed.take().is_some() {
                    self.status = Some(("the password is hidden again".into(), false));
                }
                Vec::new()
            }
            Message::Engine(Event::RecordChanged {
                kind: Kind::Task, ..
            }) => vec![Call::List(Kind::Task), Call::Schedules],
            Message::Engine(Event::RecordChanged { kind, .. }) => vec![Call::List(kind)],
            // Asked only of those who may see the log.
            Message::Engine(Event::AuditAppended { .. }) if self.audit_refused.is_none() => {
                vec![Call::AuditTail, Call::AuditVerify]
            }
            Message::Engine(Event::AuditAppended { .. }) => Vec::new(),
            Message::Engine(Event::OperationChanged(op)) => {
                // A new operation or an ended one changes the Dashboard's counts.
                let counts = op.state.is_final() || !self.live_ops.iter().any(|o| o.id == op.id);
                // A dry run that ended: the request's view shows its output.
                let dry_run_of = match op.trigger {
                    crate::domain::Trigger::DryRun { request } if op.state.is_final() => {
                        Some(request)
                    }
                    _ => None,
                };
                self.on_operation(*op);
                let mut requests = self.sync_log();
                if counts {
                    requests.extend(self.ask_metrics());
                }
                requests.extend(dry_run_of.map(Call::RequestView));
                requests
            }
            Message::Engine(Event::Output { id, chunk }) => {
                if self.log.op == Some(id) && !self.log.push(&chunk) {
                    // Some live chunks were skipped: read them back from the store.
                    return vec![Call::Output {
                        id,
                        from: self.log.next_seq,
                        debug: self.log.debug,
                    }];
                }
                Vec::new()
            }
            Message::Engine(Event::RequestChanged(r)) => {
                let mut requests = vec![Call::Queue];
                if r.requester == self.login {
                    requests.push(Call::MyRequests);
                }
                if r.schedule.is_some() {
                    requests.push(Call::Schedules);
                }
                requests.extend(self.ask_metrics());
                requests
            }
            Message::Engine(Event::JitChanged(_)) => vec![Call::Jit],
            Message::Engine(Event::SessionChanged(_)) => {
                let mut requests = vec![Call::Sessions];
                requests.extend(self.ask_metrics());
                requests
            }
            Message::Engine(Event::ShuttingDown) | Message::Disconnected => {
                self.connected = false;
                self.status = Some(("the server stopped; press q to quit".into(), true));
                Vec::new()
            }
            Message::Answer(request, result) => {
                let mut more = self.on_answer(request, result);
                more.extend(self.sync_log());
                more
            }
        }
    }

    fn on_answer(&mut self, request: Call, result: Result<Response, Failure>) -> Vec<Call> {
        // A page of stored output: read on until the store has no more (a
        // long output passes through the pane's ring buffer to its tail).
        if let (Call::Output { id, from, .. }, Ok(Response::Output(chunks))) = (&request, &result) {
            let (id, from) = (*id, *from);
            let more = !chunks.is_empty();
            self.apply_answer(request, result);
            if more && self.log.op == Some(id) && self.log.next_seq > from {
                return vec![Call::Output {
                    id,
                    from: self.log.next_seq,
                    debug: self.log.debug,
                }];
            }
            return Vec::new();
        }
        // The trace refused (view-execution-debug): the pane goes back to
        // the output alone and says why.
        if let (
            Call::Output {
                id, debug: true, ..
            },
            Err(failure),
        ) = (&request, &result)
        {
            let id = *id;
            self.status = Some((format!("no debug trace: {failure}"), true));
            self.log.debug = false;
            if self.log.op == Some(id) {
                self.log.select(id);
                return vec![Call::Output {
                    id,
                    from: 0,
                    debug: false,
                }];
            }
            return Vec::new();
        }
        // The answers a screen keeps for itself.
        let (request, result) = match screens::offer(self, request, result) {
            Ok(calls) => return calls,
            Err(answer) => *answer,
        };
        // The queue changed: learn what its new entries run.
        if let (Call::Queue, Ok(Response::Requests(list))) = (&request, &result) {
            self.approvals
                .views
                .retain(|id, _| list.iter().any(|r| r.id == *id));
            let missing: Vec<Call> = list
                .iter()
                .filter(|r| r.is_task() && !self.approvals.views.contains_key(&r.id))
                .map(|r| Call::RequestView(r.id))
                .collect();
            self.apply_answer(request, result);
            return missing;
        }
        self.apply_answer(request, result);
        Vec::new()
    }

    fn apply_answer(&mut self, request: Call, result: Result<Response, Failure>) {
        // A session under an MFA policy: ask for the code, keep the why.
        if let (
            Call::Connect {
                device,
                justification,
                totp: None,
            },
            Err(Failure::Engine(crate::engine::EngineError::MfaRequired { .. })),
        ) = (&request, &result)
        {
            self.status = Some((
                "the policy asks for a second factor: type a current code".into(),
                false,
            ));
            self.overlays.push(Overlay::Ask((
                super::overlay::Ask::ConnectCode {
                    device: device.clone(),
                    justification: justification.clone(),
                },
                line_input(""),
            )));
            return;
        }
        // An approval under an MFA policy: ask for the code, keep the comment.
        if let (
            Call::Approve {
                ids,
                comment,
                totp: None,
                until,
            },
            Err(e),
        ) = (&request, &result)
        {
            if matches!(
                e,
                Failure::Engine(crate::engine::EngineError::MfaRequired { .. })
            ) {
                let mut input = line_input("");
                input.set_mask_char('•');
                self.overlays
                    .push(Overlay::Totp((ids.clone(), comment.clone(), input)));
                self.approvals.until = *until;
                self.status = Some((
                    "the policy requires MFA: type a current TOTP code".into(),
                    true,
                ));
                return;
            }
        }
        match (request, result) {
            (Call::List(kind), Err(e)) => {
                let list = self.records.entry(kind).or_default();
                list.replace(Vec::new());
                list.refused = Some(e.to_string());
            }
            (Call::Submit(_), Err(e)) if self.request_form().is_some() => {
                if let Some(f) = self.request_form_mut() {
                    f.refused(&e);
                }
            }
            (Call::Save { .. }, Err(e)) if self.record_form().is_some() => {
                if let Some(f) = self.record_form_mut() {
                    f.refused(&e);
                }
            }
            // Only an approver sees the request; its template is theirs to see.
            (Call::RequestView(_), Err(_)) => {}
            // The servers are a Superuser's to see; others' Dashboards say nothing of them.
            (Call::Cluster, Err(_)) => {}
            (Call::Cluster, Ok(Response::Cluster(status))) => {
                self.dashboard.cluster = Some(*status);
            }
            // Not this user's to see: said where the log would be, once.
            (Call::AuditTail | Call::AuditVerify, Err(e)) => {
                self.audit_refused = Some(e.to_string());
            }
            (_, Err(e)) => self.status = Some((e.to_string(), true)),
            (Call::Terms(task), Ok(Response::Terms(terms))) => {
                self.status = None;
                let mut form = RequestForm::new(*terms, &self.theme);
                // A re-run opens the form filled as the earlier request was.
                if let Some(spec) = self.prefill.take().filter(|s| s.task == task) {
                    form.prefill(&spec);
                }
                self.overlays.push(Overlay::RequestForm(Box::new(form)));
            }
            (Call::Submit(_), Ok(Response::Filed(request))) => {
                let _ = self.take_request_form();
                let level = match request.state {
                    crate::domain::RequestState::Pending { level } => level,
                    _ => 1,
                };
                self.status = Some((
                    format!(
                        "request {} is waiting for approval at level {level}",
                        request.id
                    ),
                    false,
                ));
                // Once approved, its end is said here too.
                self.operations.watching = Some(request.id);
            }
            (
                Call::Submit(_),
                Ok(Response::Requested {
                    request,
                    operations,
                }),
            ) => {
                let _ = self.take_request_form();
                let ids: Vec<String> = operations.iter().map(|o| o.id.to_string()).collect();
                self.status = Some((
                    format!("request {request} is running: operation {}", ids.join(", ")),
                    false,
                ));
                self.operations.watching = Some(request);
                for op in operations.into_iter().rev() {
                    self.on_operation(op);
                }
                self.tab = Tab::Operations;
                self.operations.selected = 0;
                // Its operations may have ended before this answer came.
                self.on_request_progress(request);
            }
            (
                Call::Save { kind, name, .. },
                Ok(Response::Imported {
                    created, updated, ..
                }),
            ) => {
                let _ = self.take_record_form();
                let what = if !created.is_empty() {
                    "created"
                } else if !updated.is_empty() {
                    "saved"
                } else {
                    "unchanged:"
                };
                self.status = Some((format!("{what} {kind} {name}"), false));
            }
            (Call::Delete { kind, name }, Ok(_)) => {
                self.status = Some((format!("deleted {kind} {name}"), false))
            }
            (Call::Revisions(name), Ok(Response::Records(records))) => {
                let templates = records
                    .into_iter()
                    .filter_map(|r| match r {
                        Record::Template(t) => Some(t),
                        _ => None,
                    })
                    .collect();
                self.overlays
                    .push(Overlay::Revisions(Revisions::new(name, templates)));
            }
            (Call::ScanHostKeys(device), Ok(Response::HostKeys(keys))) => {
                let pinned: Vec<String> = match self
                    .list(Kind::Device)
                    .and_then(|l| l.records.iter().find(|r| r.name() == device))
                {
                    Some(Record::Device(d)) => {
                        d.host_keys.iter().map(|k| k.fingerprint()).collect()
                    }
                    _ => Vec::new(),
                };
                let offered: Vec<String> = keys.iter().map(|k| k.fingerprint()).collect();
                let change = if pinned.is_empty() {
                    "none is pinned yet".to_string()
                } else if pinned == offered {
                    "the same keys are pinned already".to_string()
                } else {
                    format!("they REPLACE the pinned {}", pinned.join(", "))
                };
                self.status = Some((
                    format!(
                        "device {device} offers {}; {change}. Trust them? y to pin, any other key leaves it",
                        keys.iter()
                            .map(|k| format!("{} {}", key_type(k), k.fingerprint()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    true,
                ));
                self.overlays
                    .push(Overlay::Confirm(Confirm::Trust { device, keys }));
            }
            (Call::DryRun(id), Ok(Response::Requested { operations, .. })) => {
                self.status = Some((
                    format!(
                        "dry run of request {id} started on {} device(s): its output shows with the request when it ends",
                        operations.len()
                    ),
                    false,
                ));
            }
            (Call::RequestView(id), Ok(Response::RequestView(view))) => {
                self.approvals.views.insert(id, *view);
            }
            (Call::PinHostKeys { device, keys }, Ok(_)) => {
                self.status = Some((
                    format!(
                        "pinned {} for device {device}",
                        keys.iter()
                            .map(|k| k.fingerprint())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    false,
                ))
            }
            (Call::List(kind), Ok(Response::Records(records))) => {
                self.records.entry(kind).or_default().replace(records);
            }
            (Call::AuditVerify, Ok(Response::AuditVerified(state))) => {
                self.audit_state = Some(state)
            }
            (Call::LiveOperations, Ok(Response::Operations(ops))) => {
                // What ended meanwhile stays listed for its while.
                let ended: Vec<Operation> = self
                    .live_ops
                    .drain(..)
                    .filter(|o| o.state.is_final() && !ops.iter().any(|n| n.id == o.id))
                    .collect();
                self.live_ops = ops;
                for o in ended {
                    let at = self
                        .live_ops
                        .iter()
                        .position(|l| l.id < o.id)
                        .unwrap_or(self.live_ops.len());
                    self.live_ops.insert(at, o);
                }
                self.keep_live_selection(None);
            }
            (Call::Output { id, .. }, Ok(Response::Output(chunks))) => {
                if self.log.op == Some(id) {
                    for c in &chunks {
                        self.log.push_stored(c);
                    }
                }
            }
            (Call::Jit, Ok(Response::Jit(leases))) => self.jit = leases,
            (Call::Schedules, Ok(Response::Schedules(all))) => {
                self.tasks.schedules = all.into_iter().map(|s| (s.task.clone(), s)).collect();
            }
            (Call::MyRequests, Ok(Response::Requests(list))) => {
                self.approvals.mine_all = list;
                self.refilter_approvals();
            }
            (Call::Explain(task), Ok(Response::Explanation(e))) => {
                self.status = None;
                self.overlays.push(Overlay::Text((
                    format!(" Why (not): {} ", crate::text::printable(&task)),
                    e.lines(),
                )));
            }
            (Call::Queue, Ok(Response::Requests(list))) => {
                // An emergency not in the queue before rings the bell.
                for r in list.iter().filter(|r| r.state == RequestState::Emergency) {
                    if self.emergencies_seen.insert(r.id) {
                        self.bell = true;
                        self.status = Some((
                            format!(
                                "EMERGENCY run #{} of {} by {}: review it on the Approvals tab",
                                r.id,
                                crate::text::printable(&r.what()),
                                crate::text::printable(&r.requester)
                            ),
                            true,
                        ));
                    }
                }
                self.approvals.queue_all = list;
                self.refilter_approvals();
            }
            (
                Call::Approve { .. } | Call::Reject { .. } | Call::Review { .. },
                Ok(Response::Decided(outcomes)),
            ) => {
                self.approvals.marked.clear();
                self.status = Some(super::screens::decided_status(&outcomes));
            }
            (Call::Cancel(id), Ok(_)) => {
                self.status = Some((format!("operation {id}: cancel requested"), false))
            }
            (
                Call::SetEnabled {
                    kind,
                    name,
                    enabled,
                },
                Ok(_),
            ) => {
                self.status = Some((
                    format!(
                        "{} {kind} {name}",
                        if enabled { "enabled" } else { "disabled" }
                    ),
                    false,
                ))
            }
            (_, Ok(other)) => self.status = Some((format!("unexpected answer: {other:?}"), true)),
        }
    }

    fn on_filter_key(&mut self, key: KeyEvent) -> Vec<Call> {
        let target = self.filter_target;
        let Some(input) = self.filter_input_mut() else {
            return Vec::new();
        };
        match (target, key.code) {
            (FilterTarget::Log, KeyCode::Enter) => {
                let needle = line_text(input);
                let _ = self.take_filter_input();
                if !self.log.search(&needle) {
                    self.status = Some((format!("'{needle}' not found above"), true));
                }
            }
            (FilterTarget::History, KeyCode::Enter) => {
                let text = line_text(input);
                match parse_history_filter(&text) {
                    Err(e) => self.status = Some((e, true)),
                    Ok(filter) => {
                        let _ = self.take_filter_input();
                        self.history.filter_text = text.trim().to_string();
                        return self.apply_history_filter(filter);
                    }
                }
            }
            (FilterTarget::History, KeyCode::Esc) => {
                let _ = self.take_filter_input();
                self.history.filter_text.clear();
                return self.apply_history_filter(None);
            }
            (FilterTarget::Approvals, KeyCode::Esc) => {
                let _ = self.take_filter_input();
                self.approvals.filter.clear();
                self.refilter_approvals();
            }
            (FilterTarget::Live, KeyCode::Esc) => {
                let _ = self.take_filter_input();
                self.operations.filter.clear();
            }
            (FilterTarget::Audit, KeyCode::Esc) => {
                let _ = self.take_filter_input();
                self.audit.filter.clear();
            }
            (FilterTarget::Records(kind), KeyCode::Esc) => {
                let _ = self.take_filter_input();
                self.records.entry(kind).or_default().set_filter("");
            }
            (_, KeyCode::Esc) | (_, KeyCode::Enter) => {
                let _ = self.take_filter_input();
            }
            (target, _) => {
                input.input(key);
                let text = line_text(input);
                match target {
                    FilterTarget::Records(kind) => {
                        self.records.entry(kind).or_default().set_filter(&text)
                    }
                    FilterTarget::Audit => {
                        self.audit.filter = text;
                        self.audit.selected = usize::MAX;
                    }
                    FilterTarget::Live => {
                        self.operations.filter = text;
                        self.operations.selected = 0;
                    }
                    FilterTarget::Approvals => {
                        self.approvals.filter = text;
                        self.refilter_approvals();
                    }
                    FilterTarget::Log | FilterTarget::History => {}
                }
            }
        }
        Vec::new()
    }

    /// Puts a History filter in force (or none) and asks for its first page.
    pub(crate) fn apply_history_filter(&mut self, filter: Option<HistoryFilter>) -> Vec<Call> {
        self.history.filter = filter.clone();
        self.history.selected = 0;
        self.history.loading = false;
        match filter {
            Some(f) => vec![Call::HistoryFiltered(f)],
            None => vec![Call::History],
        }
    }

    /// The audit events the Audit filter lets through, oldest first:
    /// `request:41` (or `req:41`) keeps a request's events and its
    /// operations'; other text matches any field.
    pub fn audit_view(&self) -> Vec<&AuditEvent> {
        let needle = self.audit.filter.trim().to_lowercase();
        let request = needle
            .strip_prefix("request:")
            .or_else(|| needle.strip_prefix("req:"))
            .and_then(|id| id.trim().parse::<u64>().ok());
        self.audit
            .events
            .iter()
            .filter(|e| match request {
                Some(id) => e.concerns_request(id),
                None => {
                    needle.is_empty()
                        || [&e.actor, &e.action, &e.target, &e.details]
                            .iter()
                            .any(|f| f.to_lowercase().contains(&needle))
                }
            })
            .collect()
    }

    fn on_export_key(&mut self, key: KeyEvent) -> Vec<Call> {
        let Some(mut input) = self.take_export_input() else {
            return Vec::new();
        };
        match key.code {
            KeyCode::Esc => {
                self.status = Some(("nothing exported".into(), false));
                Vec::new()
            }
            KeyCode::Enter => {
                let text = line_text(&input);
                if text.trim().is_empty() {
                    self.status = Some(("name the file to export to".into(), true));
                    self.overlays.push(Overlay::Export(input));
                    return Vec::new();
                }
                let path = std::path::PathBuf::from(text.trim());
                self.status = Some((
                    format!("exporting the audit log to {}…", path.display()),
                    false,
                ));
                vec![Call::ExportAudit(path)]
            }
            _ => {
                input.input(key);
                self.overlays.push(Overlay::Export(input));
                Vec::new()
            }
        }
    }

    fn on_justification_key(&mut self, key: KeyEvent) -> Vec<Call> {
        let Some((name, mut input)) = self.take_justification_input() else {
            return Vec::new();
        };
        match key.code {
            KeyCode::Esc => {
                self.status = Some((format!("the password of {name} stays hidden"), false));
                Vec::new()
            }
            KeyCode::Enter => {
                let justification = line_text(&input);
                if justification.trim().is_empty() {
                    self.status = Some(("say why you need to see it".into(), true));
                    self.overlays.push(Overlay::Justification((name, input)));
                    return Vec::new();
                }
                vec![Call::RevealCredential {
                    name,
                    justification,
                }]
            }
            _ => {
                input.input(key);
                self.overlays.push(Overlay::Justification((name, input)));
                Vec::new()
            }
        }
    }

    /// A one-line answer: Esc drops it, Enter sends it (when the question
    /// needs one), any other key types.
    fn on_ask_key(&mut self, key: KeyEvent) -> Vec<Call> {
        let Some((ask, mut input)) = self.take_ask() else {
            return Vec::new();
        };
        match key.code {
            KeyCode::Esc => {
                self.status = Some((ask.dropped(), false));
                Vec::new()
            }
            // The window's new end, then the approval's comment.
            KeyCode::Enter if matches!(ask, super::overlay::Ask::Narrow(_)) => {
                let text = line_text(&input);
                let super::overlay::Ask::Narrow(ids) = ask else {
                    return Vec::new();
                };
                match crate::domain::when::parse_time(&text, self.now()) {
                    Ok(until) => {
                        self.approvals.until = Some(until);
                        self.overlays
                            .push(Overlay::Decision((ids, true, line_input(""))));
                    }
                    Err(why) => {
                        self.status = Some((why, true));
                        self.overlays
                            .push(Overlay::Ask((super::overlay::Ask::Narrow(ids), input)));
                    }
                }
                Vec::new()
            }
            KeyCode::Enter => {
                let text = line_text(&input);
                match ask.answered(text) {
                    Ok(call) => vec![call],
                    Err(why) => {
                        self.status = Some((why, true));
                        self.overlays.push(Overlay::Ask((ask, input)));
                        Vec::new()
                    }
                }
            }
            _ => {
                input.input(key);
                self.overlays.push(Overlay::Ask((ask, input)));
                Vec::new()
            }
        }
    }

    fn on_totp_key(&mut self, key: KeyEvent) -> Vec<Call> {
        let Some((ids, comment, mut input)) = self.take_totp_input() else {
            return Vec::new();
        };
        match key.code {
            KeyCode::Esc => {
                self.status = Some((
                    format!("{}: nothing decided", super::screens::requests_text(&ids)),
                    false,
                ));
                Vec::new()
            }
            KeyCode::Enter => {
                let code = line_text(&input);
                vec![Call::Approve {
                    ids,
                    comment,
                    totp: Some(code),
                    until: self.approvals.until.take(),
                }]
            }
            _ => {
                input.input(key);
                self.overlays.push(Overlay::Totp((ids, comment, input)));
                Vec::new()
            }
        }
    }

    fn on_decision_key(&mut self, key: KeyEvent) -> Vec<Call> {
        let Some((ids, approve, mut input)) = self.take_decision_input() else {
            return Vec::new();
        };
        match key.code {
            KeyCode::Esc => {
                self.approvals.until = None;
                self.status = Some((
                    format!("{}: nothing decided", super::screens::requests_text(&ids)),
                    false,
                ));
                Vec::new()
            }
            KeyCode::Enter if self.all_emergencies(&ids) => {
                // A review: accepted (a) or flagged (r), always saying why.
                let comment = line_text(&input);
                if comment.trim().is_empty() {
                    self.status = Some(("a review needs a comment".into(), true));
                    self.overlays.push(Overlay::Decision((ids, approve, input)));
                    Vec::new()
                } else {
                    vec![Call::Review {
                        ids,
                        accepted: approve,
                        comment,
                    }]
                }
            }
            KeyCode::Enter => {
                let comment = line_text(&input);
                if approve {
                    vec![Call::Approve {
                        ids,
                        comment,
                        totp: None,
                        until: self.approvals.until.take(),
                    }]
                } else if comment.trim().is_empty() {
                    self.status = Some(("a rejection needs a comment saying why".into(), true));
                    self.overlays.push(Overlay::Decision((ids, approve, input)));
                    Vec::new()
                } else {
                    vec![Call::Reject { ids, comment }]
                }
            }
            _ => {
                input.input(key);
                self.overlays.push(Overlay::Decision((ids, approve, input)));
                Vec::new()
            }
        }
    }

    fn on_command_key(&mut self, key: KeyEvent) {
        use super::command::{complete, resolve, Jump};
        let Some(mut input) = self.take_command_input() else {
            return;
        };
        let text = line_text(&input);
        match key.code {
            KeyCode::Esc => {}
            KeyCode::Tab => {
                if let Some(done) = complete(&text) {
                    input = line_input(&done);
                }
                self.overlays.push(Overlay::Command(input));
            }
            KeyCode::Enter => match resolve(&text) {
                Some(Jump::Screen(tab)) => self.tab = tab,
                Some(Jump::Kind(kind)) => {
                    self.tab = Tab::Admin;
                    self.admin.kind = Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
                }
                None if text.trim() == "quit" || text.trim() == "q" => self.quit = true,
                None => {
                    self.status = Some((
                        format!("unknown '{}': try :approvals, :history, :devices, :templates (Tab completes)", text.trim()),
                        true,
                    ))
                }
            },
            _ => {
                input.input(key);
                self.overlays.push(Overlay::Command(input));
            }
        }
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Call> {
        // The overlay on top takes the key.
        if !self.overlays.is_empty() {
            return self.on_overlay_key(key);
        }
        if self.keys.is(&key, Action::Command) {
            self.overlays.push(Overlay::Command(line_input("")));
            return Vec::new();
        }
        if self.keys.is(&key, Action::Help) {
            self.overlays.push(Overlay::Help(()));
            return Vec::new();
        }
        let mut requests = self.on_screen_key(key);
        requests.extend(self.sync_log());
        requests
    }

    /// The one routing function of the overlays: the top one takes the key.
    fn on_overlay_key(&mut self, key: KeyEvent) -> Vec<Call> {
        match self.overlays.last() {
            None => Vec::new(),
            // Any key closes help and text; `?` and Esc are the ones
            // people press.
            Some(Overlay::Help(())) | Some(Overlay::Text(_)) => {
                self.overlays.pop();
                Vec::new()
            }
            Some(Overlay::RequestForm(_)) => self.on_request_form_key(key),
            Some(Overlay::RecordForm(_)) => self.on_record_form_key(key),
            Some(Overlay::Detail(_)) => {
                if matches!(key.code, KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q')) {
                    self.overlays.pop();
                } else if self.keys.is(&key, Action::PageUp) {
                    self.log.scroll(20);
                } else if self.keys.is(&key, Action::PageDown) {
                    self.log.scroll(-20);
                }
                Vec::new()
            }
            Some(Overlay::Revisions(_)) => {
                if let Some(view) = self.revisions_mut() {
                    if !view.on_key(key) {
                        let _ = self.take_revisions();
                    }
                }
                Vec::new()
            }
            Some(Overlay::Command(_)) => {
                self.on_command_key(key);
                self.sync_log()
            }
            Some(Overlay::Totp(_)) => self.on_totp_key(key),
            Some(Overlay::Export(_)) => self.on_export_key(key),
            Some(Overlay::Justification(_)) => self.on_justification_key(key),
            Some(Overlay::Ask(_)) => self.on_ask_key(key),
            Some(Overlay::Decision(_)) => self.on_decision_key(key),
            Some(Overlay::Confirm(_)) => match self.take_confirm() {
                Some(confirm) => self.on_confirm_key(confirm, key),
                None => Vec::new(),
            },
            Some(Overlay::Filter(_)) => {
                let mut requests = self.on_filter_key(key);
                requests.extend(self.sync_log());
                requests
            }
        }
    }

    fn on_confirm_key(&mut self, confirm: Confirm, key: KeyEvent) -> Vec<Call> {
        let yes = key.code == KeyCode::Char('y');
        match (confirm, yes) {
            (Confirm::CancelOperation(id), true) => vec![Call::Cancel(id)],
            (Confirm::CancelOperation(id), false) => {
                self.status = Some((format!("operation {id} left running"), false));
                Vec::new()
            }
            (Confirm::Delete { kind, name }, true) => vec![Call::Delete { kind, name }],
            (Confirm::Delete { kind, name }, false) => {
                self.status = Some((format!("{kind} {name} kept"), false));
                Vec::new()
            }
            (Confirm::Trust { device, keys }, true) => vec![Call::PinHostKeys { device, keys }],
            (Confirm::Trust { device, .. }, false) => {
                self.status = Some((format!("nothing pinned for {device}"), false));
                Vec::new()
            }
            (Confirm::ChangePassword { credential }, true) => {
                self.status = Some((
                    format!("starting the password change of {credential}…"),
                    false,
                ));
                vec![Call::ChangeCredential(credential)]
            }
            (Confirm::ChangePassword { credential }, false) => {
                self.status = Some((format!("the password of {credential} is unchanged"), false));
                Vec::new()
            }
        }
    }

    fn on_request_form_key(&mut self, key: KeyEvent) -> Vec<Call> {
        let Some(form) = self.request_form_mut() else {
            return Vec::new();
        };
        match form_key(&mut **form, key) {
            FormStep::Open => Vec::new(),
            FormStep::Closed => {
                let _ = self.take_request_form();
                self.status = Some(("nothing requested".into(), false));
                Vec::new()
            }
            FormStep::Submit => match form.spec() {
                Some(spec) => {
                    form.form.sending = true;
                    vec![Call::Submit(spec)]
                }
                None => Vec::new(),
            },
        }
    }

    fn on_record_form_key(&mut self, key: KeyEvent) -> Vec<Call> {
        let Some(form) = self.record_form_mut() else {
            return Vec::new();
        };
        // A template's mask legend, over the form on a narrow terminal.
        if form.kind == Kind::Template && key.code == KeyCode::F(2) {
            form.legend_open = !form.legend_open;
            return Vec::new();
        }
        if form.legend_open && key.code == KeyCode::Esc {
            form.legend_open = false;
            return Vec::new();
        }
        match form_key(&mut **form, key) {
            FormStep::Open => Vec::new(),
            FormStep::Closed => {
                let _ = self.take_record_form();
                self.status = Some(("nothing saved".into(), false));
                Vec::new()
            }
            FormStep::Submit => match form.build_items() {
                Some(items) => {
                    form.form.sending = true;
                    let name = items
                        .first()
                        .map(|i| i.record.name().to_string())
                        .unwrap_or_default();
                    vec![Call::Save {
                        kind: form.kind,
                        name,
                        items,
                    }]
                }
                None => Vec::new(),
            },
        }
    }

    fn on_screen_key(&mut self, key: KeyEvent) -> Vec<Call> {
        let k = &self.keys;
        let search_log = k.is(&key, Action::SearchLog) && screens::of(self.tab).searches_log();
        if k.is(&key, Action::Filter) || search_log {
            let Some((target, current)) = screens::of(self.tab).filter(self, search_log) else {
                // Said, not silently dropped.
                self.status = Some((
                    format!(
                        "{} has no list to filter; Enter opens the selected item's screen, where / filters",
                        screens::of(self.tab).title()
                    ),
                    false,
                ));
                return Vec::new();
            };
            self.filter_target = target;
            self.overlays.push(Overlay::Filter(line_input(&current)));
            return Vec::new();
        }
        if k.is(&key, Action::Quit) {
            self.quit = true;
        } else if k.is(&key, Action::NextTab) {
            self.tab = Tab::ALL[(self.tab.index() + 1) % Tab::ALL.len()];
        } else if k.is(&key, Action::PrevTab) {
            self.tab = Tab::ALL[(self.tab.index() + Tab::ALL.len() - 1) % Tab::ALL.len()];
        } else if k.is(&key, Action::Refresh) {
            return self.start();
        } else if let Some(tab) = digit_tab(key.code) {
            self.tab = tab;
        } else {
            return self.on_tab_key(key);
        }
        Vec::new()
    }

    /// How far a movement key moves the cursor, if it is one.
    fn movement(&self, key: &KeyEvent) -> Option<isize> {
        let k = &self.keys;
        if k.is(key, Action::Down) {
            Some(1)
        } else if k.is(key, Action::Up) {
            Some(-1)
        } else if k.is(key, Action::PageDown) {
            Some(20)
        } else if k.is(key, Action::PageUp) {
            Some(-20)
        } else if k.is(key, Action::Top) {
            Some(isize::MIN / 2)
        } else if k.is(key, Action::Bottom) {
            Some(isize::MAX / 2)
        } else {
            None
        }
    }

    /// The names of the records of every kind, for the forms' choices.
    fn names(&self) -> super::record_form::Names {
        self.records
            .iter()
            .map(|(kind, list)| {
                (
                    *kind,
                    list.records.iter().map(|r| r.name().to_string()).collect(),
                )
            })
            .collect()
    }

    pub(crate) fn on_admin_key(&mut self, key: KeyEvent, delta: Option<isize>) -> Vec<Call> {
        // A revealed password goes on Esc, and on leaving the credentials.
        if self.admin.revealed.is_some() && key.code == KeyCode::Esc {
            self.admin.revealed = None;
            self.status = Some(("the password is hidden again".into(), false));
            return Vec::new();
        }
        let k = self.keys.clone();
        let kind = self.admin_kind();
        let selected = self.list(kind).and_then(|l| l.selected()).cloned();
        if k.is(&key, Action::NextKind) {
            self.admin.kind = (self.admin.kind + 1) % Kind::ALL.len();
        } else if k.is(&key, Action::PrevKind) {
            self.admin.kind = (self.admin.kind + Kind::ALL.len() - 1) % Kind::ALL.len();
        } else if k.is(&key, Action::Toggle) {
            if let Some(r) = selected {
                return vec![Call::SetEnabled {
                    kind: r.kind(),
                    name: r.name().to_string(),
                    enabled: !r.meta().enabled,
                }];
            }
        } else if k.is(&key, Action::New) {
            self.overlays
                .push(Overlay::RecordForm(Box::new(RecordForm::new(
                    kind,
                    Mode::New,
                    None,
                    &self.names(),
                ))));
        } else if k.is(&key, Action::Edit) || k.is(&key, Action::Open) {
            if let Some(r) = selected {
                if r.kind() == Kind::Role && r.name() == "Superuser" {
                    self.status = Some(("the Superuser role cannot be changed".into(), true));
                } else {
                    let mode = Mode::Edit(r.name().to_string());
                    self.overlays
                        .push(Overlay::RecordForm(Box::new(RecordForm::new(
                            kind,
                            mode,
                            Some(&r),
                            &self.names(),
                        ))));
                }
            }
        } else if k.is(&key, Action::Clone) {
            if let Some(r) = selected {
                if matches!(kind, Kind::User | Kind::Credential)
                    || (kind == Kind::Role && r.name() == "Superuser")
                {
                    self.status = Some((
                        format!("{kind} records are not cloned: create a new one (n)"),
                        true,
                    ));
                } else {
                    let mode = Mode::Clone(r.name().to_string());
                    self.overlays
                        .push(Overlay::RecordForm(Box::new(RecordForm::new(
                            kind,
                            mode,
                            Some(&r),
                            &self.names(),
                        ))));
                }
            }
        } else if k.is(&key, Action::Delete) {
            if let Some(r) = selected {
                self.status = Some((
                    format!(
                        "delete {kind} {}? y to delete, any other key keeps it",
                        r.name()
                    ),
                    true,
                ));
                self.overlays.push(Overlay::Confirm(Confirm::Delete {
                    kind,
                    name: r.name().to_string(),
                }));
            }
        } else if k.is(&key, Action::Revisions) && kind == Kind::Template {
            if let Some(r) = selected {
                return vec![Call::Revisions(r.name().to_string())];
            }
        } else if k.is(&key, Action::ChangePassword) && kind == Kind::Credential {
            if let Some(r) = selected {
                self.status = Some((
                    format!(
                        "change the password of {} on its devices (a new one, verified before it is kept)? y to change, any other key leaves it",
                        r.name()
                    ),
                    true,
                ));
                self.overlays
                    .push(Overlay::Confirm(Confirm::ChangePassword {
                        credential: r.name().to_string(),
                    }));
            }
        } else if k.is(&key, Action::Reveal) && kind == Kind::Credential {
            if let Some(r) = selected {
                self.overlays.push(Overlay::Justification((
                    r.name().to_string(),
                    line_input(""),
                )));
            }
        } else if k.is(&key, Action::Connect) && kind == Kind::Device {
            if let Some(r) = selected {
                self.overlays.push(Overlay::Ask((
                    super::overlay::Ask::Connect(r.name().to_string()),
                    line_input(""),
                )));
            }
        } else if k.is(&key, Action::Trust) && kind == Kind::Device {
            if let Some(r) = selected {
                self.status = Some((format!("asking {} for its host key…", r.name()), false));
                return vec![Call::ScanHostKeys(r.name().to_string())];
            }
        } else if let Some(d) = delta {
            self.records.entry(kind).or_default().move_by(d);
        }
        Vec::new()
    }

    fn on_tab_key(&mut self, key: KeyEvent) -> Vec<Call> {
        let delta = self.movement(&key);
        screens::of(self.tab).on_key(self, key, delta)
    }

    /// Near the end of the History that is loaded: the next page is asked.
    pub(crate) fn next_history_page(&mut self) -> Vec<Call> {
        if !self.history.complete
            && !self.history.loading
            && self.history.selected + 200 >= self.history.ops.len()
        {
            if let Some(oldest) = self.history.ops.last() {
                self.history.loading = true;
                return vec![match &self.history.filter {
                    Some(filter) => Call::HistoryFiltered(HistoryFilter {
                        before: Some(oldest.id),
                        ..filter.clone()
                    }),
                    None => Call::HistoryBefore(oldest.id),
                }];
            }
        }
        Vec::new()
    }

    /// Clicks select tabs and rows; the wheel scrolls the list.
    fn on_mouse(&mut self, mouse: MouseEvent) -> Vec<Call> {
        if self.request_form().is_some()
            || self.record_form().is_some()
            || self.revisions().is_some()
        {
            return Vec::new();
        }
        let moved = match mouse.kind {
            MouseEventKind::ScrollDown => Some(3),
            MouseEventKind::ScrollUp => Some(-3),
            MouseEventKind::Down(MouseButton::Left) if mouse.row == 0 => {
                if let Some(tab) = self.tab_at(mouse.column) {
                    self.tab = tab;
                }
                return self.sync_log();
            }
            MouseEventKind::Down(MouseButton::Left) => {
                let Some((area, first, len)) = self.list_hit.get() else {
                    return Vec::new();
                };
                let inside = mouse.column >= area.x
                    && mouse.column < area.x + area.width
                    && mouse.row >= area.y
                    && mouse.row < area.y + area.height;
                let index = first + (mouse.row.saturating_sub(area.y)) as usize;
                if !inside || index >= len {
                    return Vec::new();
                }
                let current = self.cursor();
                Some(index as isize - current as isize)
            }
            _ => None,
        };
        let Some(d) = moved else {
            return Vec::new();
        };
        let mut requests = screens::of(self.tab).move_cursor(self, d);
        requests.extend(self.sync_log());
        requests
    }

    /// The cursor of the current screen's list.
    fn cursor(&self) -> usize {
        screens::of(self.tab).cursor(self)
    }

    /// The tab whose title is at column `x` of the tab bar.
    fn tab_at(&self, x: u16) -> Option<Tab> {
        // Tabs draws " title " separated by "│": one column of padding each side.
        let mut start = 0u16;
        let compact = self.tabs_compact.get();
        for (i, tab) in Tab::ALL.iter().enumerate() {
            let width = self.tab_label(i, *tab, compact).chars().count() as u16 + 2;
            if x >= start && x < start + width {
                return Some(*tab);
            }
            start += width + 1;
        }
        None
    }

    /// Draws the whole screen.
    pub fn draw(&self, frame: &mut Frame) {
        self.list_hit.set(None);
        let area = frame.area();
        if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
            let text = format!(
                "The terminal is {}×{}; Gatehouse needs at least {MIN_WIDTH}×{MIN_HEIGHT}. Make it larger (q quits).",
                area.width, area.height
            );
            frame.render_widget(
                Paragraph::new(text)
                    .style(self.theme.warn_style())
                    .wrap(ratatui::widgets::Wrap { trim: true }),
                area,
            );
            return;
        }
        let [top, body, bottom] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(1),
            Constraint::Length(1),
        ])
        .areas(frame.area());
        self.draw_tabs(frame, top);
        screens::of(self.tab).draw(self, frame, body);
        self.draw_status(frame, bottom);
        // Overlays bottom to top (prompts draw on the status line).
        for overlay in &self.overlays {
            match overlay {
                Overlay::Revisions(view) => view.draw(frame, body, &self.theme),
                Overlay::Detail((id, request)) => {
                    if let Some(op) = self.history.ops.iter().find(|o| o.id == *id) {
                        tabs::operations::draw_detail(self, frame, body, op, request.as_ref());
                    }
                }
                Overlay::RequestForm(form) => form.form.draw(frame, body, &self.theme),
                Overlay::RecordForm(form) => form.draw(frame, body, &self.theme),
                Overlay::Help(()) => self.draw_help(frame),
                Overlay::Text((title, lines)) => self.draw_text(frame, title, lines),
                Overlay::Command(_)
                | Overlay::Totp(_)
                | Overlay::Export(_)
                | Overlay::Decision(_)
                | Overlay::Confirm(_)
                | Overlay::Filter(_)
                | Overlay::Justification(_)
                | Overlay::Ask(_) => {}
            }
        }
    }

    /// The width the tab bar's titles take.
    fn tabs_width(&self, compact: u8) -> u16 {
        Tab::ALL
            .iter()
            .enumerate()
            .map(|(i, t)| self.tab_label(i, *t, compact).chars().count() as u16 + 3)
            .sum()
    }

    /// A tab's label: full title, short title, or (narrowest) its digit
    /// alone unless it is the current tab.
    fn tab_label(&self, i: usize, tab: Tab, compact: u8) -> String {
        match compact {
            0 => format!("{} {}", i + 1, tab.title()),
            1 => format!("{} {}", i + 1, tab.short_title()),
            _ if tab == self.tab => format!("{} {}", i + 1, tab.short_title()),
            _ => (i + 1).to_string(),
        }
    }

    fn draw_tabs(&self, frame: &mut Frame, area: Rect) {
        // Full titles and who is where if they fit; else short titles; else
        // only the login beside them.
        let full_who = if self.server.is_empty() {
            self.login.clone()
        } else {
            format!("{}@{}", self.login, self.server)
        };
        let fits = |compact: u8, who: &str| {
            self.tabs_width(compact) + (who.chars().count() as u16) < area.width
        };
        // Every tab always shows: at the narrowest, digits.
        let (compact, who) = if fits(0, &full_who) {
            (0, full_who)
        } else if fits(1, &full_who) {
            (1, full_who)
        } else if fits(1, &self.login) {
            (1, self.login.clone())
        } else {
            (2, self.login.clone())
        };
        self.tabs_compact.set(compact);
        let titles: Vec<Line> = Tab::ALL
            .iter()
            .enumerate()
            .map(|(i, t)| Line::from(self.tab_label(i, *t, compact)))
            .collect();
        let [tabs_area, who_area] = Layout::horizontal([
            Constraint::Min(10),
            Constraint::Length(who.chars().count() as u16 + 1),
        ])
        .areas(area);
        frame.render_widget(
            Tabs::new(titles)
                .select(self.tab.index())
                .style(self.theme.dim())
                .highlight_style(self.theme.selected()),
            tabs_area,
        );
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(who, self.theme.title()))).right_aligned(),
            who_area,
        );
    }

    /// The keys of the current screen, with what each does, as the footer
    /// and `?` show them (the keys in force, rebound ones included).
    pub fn screen_keys(&self) -> Vec<(String, &'static str)> {
        screens::of(self.tab).keys(self)
    }

    /// The footer's text: this screen's keys, then the ones that work everywhere.
    pub fn keys(&self) -> String {
        self.keys_within(usize::MAX)
    }

    /// The footer's keys in at most `width` columns: whole entries only,
    /// and always the help key (it lists the ones left out) and the quit
    /// key (the way out is never crowded off).
    pub fn keys_within(&self, width: usize) -> String {
        let k = &self.keys;
        let mut parts: Vec<String> = self
            .screen_keys()
            .into_iter()
            .map(|(key, what)| format!("{key} {what}"))
            .collect();
        parts.push(format!("{} jump", k.first(Action::Command)));
        let tail = format!(
            "{} help  {} quit",
            k.first(Action::Help),
            k.first(Action::Quit)
        );
        let all = format!("{}  {tail}", parts.join("  "));
        if all.chars().count() <= width {
            return all;
        }
        let mut shown = String::new();
        for part in &parts {
            let next = shown.chars().count() + part.chars().count() + 2;
            if next + tail.chars().count() > width {
                break;
            }
            shown.push_str(part);
            shown.push_str("  ");
        }
        if tail.chars().count() + shown.chars().count() > width {
            // Too narrow for both: the help key alone.
            let help = format!("{} help", k.first(Action::Help));
            return if help.chars().count() <= width {
                help
            } else {
                String::new()
            };
        }
        shown.push_str(&tail);
        shown
    }

    fn draw_help(&self, frame: &mut Frame) {
        use ratatui::widgets::{Block, Borders, Clear};
        let area = frame.area();
        let width = area.width.min(90);
        let height = area.height.min(20);
        let popup = Rect {
            x: area.x + (area.width - width) / 2,
            y: area.y + (area.height - height) / 2,
            width,
            height,
        };
        let mut lines = vec![Line::from(Span::styled(
            format!("{} keys", self.tab.title()),
            self.theme.title(),
        ))];
        for (key, what) in self.screen_keys() {
            lines.push(Line::from(format!("  {key:<22}  {what}")));
        }
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled("Everywhere", self.theme.title())));
        let k = &self.keys;
        for (key, what) in [
            (
                format!(
                    "{} / {} / 1-7",
                    k.first(Action::NextTab),
                    k.first(Action::PrevTab)
                ),
                "switch screens (or click a tab)",
            ),
            (
                format!("{}name", k.first(Action::Command)),
                "jump to a screen or record kind (Tab completes)",
            ),
            (k.label(Action::Help), "this help"),
            (k.label(Action::Refresh), "reload"),
            (k.label(Action::Quit), "quit"),
            ("Esc".to_string(), "close a dialog or form"),
        ] {
            lines.push(Line::from(format!("  {key:<22}  {what}")));
        }
        frame.render_widget(Clear, popup);
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(ratatui::widgets::Wrap { trim: false })
                .block(
                    Block::default()
                        .borders(Borders::ALL)
                        .title(" Help ")
                        .title_style(self.theme.title()),
                ),
            popup,
        );
    }

    /// A popup of lines to read, wrapped at its width; any key closes it.
    fn draw_text(&self, frame: &mut Frame, title: &str, lines: &[String]) {
        use ratatui::widgets::{Block, Borders, Clear, Wrap};
        let area = frame.area();
        let width = area.width.saturating_sub(4).max(20).min(area.width);
        let inner = width.saturating_sub(2).max(1) as usize;
        let rows: usize = lines.iter().map(|l| wrapped_rows(l, inner)).sum();
        let height = (rows as u16 + 2).min(area.height.saturating_sub(2)).max(3);
        let popup = Rect {
            x: area.x + (area.width - width) / 2,
            y: area.y + (area.height.saturating_sub(height)) / 2,
            width,
            height,
        };
        let text: Vec<Line> = lines.iter().map(|l| Line::from(l.clone())).collect();
        frame.render_widget(Clear, popup);
        frame.render_widget(
            Paragraph::new(text).wrap(Wrap { trim: false }).block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(title.to_string())
                    .title_style(self.theme.title()),
            ),
            popup,
        );
    }

    /// A label and a one-line input on the status line.
    fn draw_prompt(
        &self,
        frame: &mut Frame,
        area: Rect,
        label: &str,
        input: &tui_textarea::TextArea,
    ) {
        let width = label.chars().count() as u16;
        let [prompt, field] =
            Layout::horizontal([Constraint::Length(width), Constraint::Min(1)]).areas(area);
        frame.render_widget(
            Paragraph::new(Span::styled(label.to_string(), self.theme.title())),
            prompt,
        );
        frame.render_widget(input, field);
    }

    fn draw_status(&self, frame: &mut Frame, area: Rect) {
        // The topmost prompt on the stack has the status line.
        for overlay in self.overlays.iter().rev() {
            match overlay {
                Overlay::Command(input) => return self.draw_prompt(frame, area, ":", input),
                Overlay::Totp((ids, _, input)) => {
                    return self.draw_prompt(
                        frame,
                        area,
                        &format!("TOTP code for {}: ", super::screens::requests_text(ids)),
                        input,
                    )
                }
                Overlay::Export(input) => {
                    return self.draw_prompt(
                        frame,
                        area,
                        "export the audit log to (a new file, yours alone): ",
                        input,
                    )
                }
                Overlay::Decision((ids, approve, input)) => {
                    let what = super::screens::requests_text(ids);
                    let label = match (self.all_emergencies(ids), *approve) {
                        (true, true) => format!("accept the emergency run of {what}, why: "),
                        (true, false) => {
                            format!("flag the emergency run of {what} for follow-up, why: ")
                        }
                        (false, true) => match self.approvals.until {
                            Some(t) => format!("approve {what}, window to end {t}, comment: "),
                            None => format!("approve {what}, comment: "),
                        },
                        (false, false) => format!("reject {what}, why: "),
                    };
                    return self.draw_prompt(frame, area, &label, input);
                }
                Overlay::Justification((name, input)) => {
                    return self.draw_prompt(
                        frame,
                        area,
                        &format!("show the password of {name}; why (audited): "),
                        input,
                    )
                }
                Overlay::Ask((ask, input)) => {
                    return self.draw_prompt(frame, area, &ask.label(), input)
                }
                Overlay::Filter(input) => {
                    let label = match self.filter_target {
                        FilterTarget::Log => "search the log /",
                        FilterTarget::Live | FilterTarget::Approvals => "filter /",
                        FilterTarget::History => {
                            "filter (task: device: user: state: out: or text) /"
                        }
                        FilterTarget::Audit | FilterTarget::Records(_) => "filter /",
                    };
                    return self.draw_prompt(frame, area, label, input);
                }
                _ => {}
            }
        }
        let width = area.width as usize;
        let keys = match &self.status {
            Some((text, _)) => self.keys_within(
                width.saturating_sub(crate::text::printable(text).chars().count() + 3),
            ),
            None => self.keys_within(width),
        };
        let keys = keys.as_str();
        let line = match &self.status {
            Some((text, is_error)) => Line::from(vec![
                Span::styled(
                    crate::text::printable(text),
                    self.theme.fg(if *is_error {
                        self.theme.error
                    } else {
                        self.theme.ok
                    }),
                ),
                Span::styled(format!("   {keys}"), self.theme.dim()),
            ]),
            None => Line::from(Span::styled(keys, self.theme.dim())),
        };
        frame.render_widget(Paragraph::new(line), area);
    }
}

/// The screen a digit key jumps to: its place in `Tab::ALL`, from 1.
fn digit_tab(code: KeyCode) -> Option<Tab> {
    let KeyCode::Char(c) = code else {
        return None;
    };
    let n = c.to_digit(10)? as usize;
    n.checked_sub(1).and_then(|i| Tab::ALL.get(i)).copied()
}

/// A host key's type, for people ("ssh-ed25519").
fn key_type(key: &HostKey) -> &str {
    match key {
        HostKey::PublicKey { algorithm, .. } => algorithm,
        HostKey::Fingerprint(_) => "key",
    }
}
