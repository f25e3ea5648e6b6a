//! What each screen does, behind one trait: its titles and `:` words, its
//! keys (footer and help), its key handling, its cursor, its filter and
//! its drawing. `App` routes to the screen of the current tab through
//! [`of`], the one list; it has no `match` on the tab of its own.
//!
//! To add a screen: a `Tab` variant (its place in `Tab::ALL` is its digit),
//! a type here implementing [`Screen`] with its arm in [`of`], its drawing
//! in `ui::tabs`, and a snapshot in `tests/tui_screens.rs`. (The state a
//! screen shows still lives in `App`, grouped by screen.)

use super::app::{filter_key, line_input, Call, Confirm, FilterTarget, HISTORY_PAGE};
use super::keys::Action;
use super::{tabs, App};
use crate::domain::{Kind, Operation, RequestState};
use crate::engine::Response;
use crossterm::event::KeyEvent;
use ratatui::layout::Rect;
use ratatui::Frame;

/// The Dashboard's own state: the engine's numbers and whether they are
/// being asked.
#[derive(Default)]
pub struct DashboardState {
    pub metrics: Option<crate::engine::metrics::Metrics>,
    /// A metrics request is on its way; another is asked when it is
    /// answered if something changed meanwhile.
    pub(crate) in_flight: bool,
    pub(crate) stale: bool,
    /// The item under the cursor (Enter opens what it counts).
    pub selected: usize,
    /// The store and its servers, for a Superuser.
    pub cluster: Option<crate::engine::api::ClusterStatus>,
}

/// The Tasks screen's own state: where each scheduled task's schedule
/// stands, by task name.
#[derive(Default)]
pub struct TasksState {
    pub schedules: std::collections::BTreeMap<String, crate::engine::schedules::ScheduleStatus>,
}

/// The Approvals screen's own state: its cursor, and what each request in
/// the queue runs (the pinned template revision, and the template's
/// current revision when it has changed since).
#[derive(Default)]
pub struct ApprovalsState {
    pub selected: usize,
    /// Requests marked (space) to be decided together.
    pub marked: std::collections::BTreeSet<crate::domain::Id>,
    /// The end the next approval narrows the window to (`u`).
    pub until: Option<crate::domain::Timestamp>,
    /// The caller's own requests, and whether the tab shows them (`m`)
    /// instead of those waiting for the caller.
    pub mine: Vec<crate::domain::ExecutionRequest>,
    pub mine_selected: usize,
    pub show_mine: bool,
    /// Words every listed request holds (`/`), over both lists; the
    /// lists as the engine sent them, before the filter.
    pub filter: String,
    pub queue_all: Vec<crate::domain::ExecutionRequest>,
    pub mine_all: Vec<crate::domain::ExecutionRequest>,
    /// What each request in the queue will run, as the engine rendered it.
    pub views: std::collections::BTreeMap<crate::domain::Id, crate::engine::api::RequestView>,
}

/// The Operations screen's own state.
#[derive(Default)]
pub struct OperationsState {
    pub selected: usize,
    /// The request just submitted from this UI, whose end the status
    /// line will tell.
    pub watching: Option<crate::domain::Id>,
    /// Words every listed operation holds (`/`).
    pub filter: String,
}

/// Where one request's run stands: its devices done, failed, running and
/// queued of its total, and since when.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    pub request: crate::domain::Id,
    pub task: String,
    pub total: usize,
    /// Ended without failing (skipped ones included).
    pub done: usize,
    /// Of those done, the ones where every task was skipped.
    pub skipped: usize,
    pub failed: usize,
    pub running: usize,
    pub queued: usize,
    pub started: Option<crate::domain::Timestamp>,
    /// When the last of them ended.
    pub finished: Option<crate::domain::Timestamp>,
}

impl Progress {
    pub fn ended(&self) -> bool {
        self.total > 0 && self.done + self.failed == self.total
    }

    /// Time since it started, up to its end once it has ended.
    pub fn elapsed_ms(&self, now: crate::domain::Timestamp) -> i64 {
        let Some(start) = self.started else {
            return 0;
        };
        let end = if self.ended() {
            self.finished.unwrap_or(now)
        } else {
            now
        };
        end.0.saturating_sub(start.0).max(0)
    }
}

/// The History screen's own state: a page of operations (newest first),
/// its cursor, paging and filter, and the detail of one operation.
#[derive(Default)]
pub struct HistoryState {
    pub ops: Vec<Operation>,
    pub selected: usize,
    /// Whether the oldest operation is loaded; else the next page is asked
    /// for when the cursor nears the end.
    pub complete: bool,
    pub(crate) loading: bool,
    /// The filter in force, as typed and as asked.
    pub filter_text: String,
    pub filter: Option<crate::engine::HistoryFilter>,
    /// The sessions view, when History shows sessions instead.
    pub sessions: Option<SessionsView>,
    /// Why the detail's request is not shown (there is none, or it is
    /// not this user's to see).
    pub detail_note: Option<String>,
}

/// History's sessions view: the sessions this user may see and its cursor.
#[derive(Default)]
pub struct SessionsView {
    pub list: Vec<crate::domain::SessionRecord>,
    pub selected: usize,
}

/// The Audit screen's own state: the newest events, its cursor and filter.
#[derive(Default)]
pub struct AuditState {
    pub events: Vec<crate::store::AuditEvent>,
    pub selected: usize,
    /// The filter in force (over the events loaded).
    pub filter: String,
}

/// The Admin screen's own state: which record kind it shows.
#[derive(Default)]
pub struct AdminState {
    pub kind: usize,
    /// Where each credential's password stands, by name.
    pub credential_states: std::collections::BTreeMap<String, crate::domain::SecretStatus>,
    /// A password being shown (for 30 seconds), with its credential.
    pub revealed: Option<(String, crate::engine::api::Revealed)>,
    /// The OS groups in use, shown under the users.
    pub groups: Vec<crate::engine::api::GroupInUse>,
}

/// The screens, in tab order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Dashboard,
    Tasks,
    Approvals,
    Operations,
    History,
    Audit,
    Admin,
}

impl Tab {
    pub const ALL: [Tab; 7] = [
        Tab::Dashboard,
        Tab::Tasks,
        Tab::Approvals,
        Tab::Operations,
        Tab::History,
        Tab::Audit,
        Tab::Admin,
    ];
    pub fn title(self) -> &'static str {
        of(self).title()
    }
    /// The title on a narrow tab bar.
    pub fn short_title(self) -> &'static str {
        of(self).short_title()
    }
    pub fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

/// One screen's behaviour.
pub trait Screen: Sync {
    /// Its name on the tab bar.
    fn title(&self) -> &'static str;
    /// Its name on a narrow tab bar.
    fn short_title(&self) -> &'static str;
    /// Its word on the `:` line.
    fn word(&self) -> &'static str;
    /// Other words the `:` line takes for it.
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }
    fn draw(&self, app: &App, frame: &mut Frame, area: Rect);
    /// Its keys with what each does (the keys in force).
    fn keys(&self, app: &App) -> Vec<(String, &'static str)>;
    /// A key no overlay took; `delta` is how far it moves, if it moves.
    fn on_key(&self, app: &mut App, key: KeyEvent, delta: Option<isize>) -> Vec<Call>;
    /// Moves its list's cursor (keys and the mouse wheel).
    fn move_cursor(&self, _app: &mut App, _d: isize) -> Vec<Call> {
        Vec::new()
    }
    /// Its list's cursor (for mouse clicks).
    fn cursor(&self, _app: &App) -> usize {
        0
    }
    /// What `/` filters here and the filter in force (`search_log`: the
    /// key that searches the log was pressed).
    fn filter(&self, _app: &mut App, _search_log: bool) -> Option<(FilterTarget, String)> {
        None
    }
    /// Whether its log can be searched.
    fn searches_log(&self) -> bool {
        false
    }
    /// An answer this screen keeps for itself: `Ok` with what to ask next
    /// when it took it, `Err` with the answer when it is not its own.
    fn on_answer(&self, _app: &mut App, call: Call, result: Answer) -> Result<Vec<Call>, Returned> {
        Err(Box::new((call, result)))
    }
    /// The operation it has selected, if it shows operations.
    fn selected_operation<'a>(&self, _app: &'a App) -> Option<&'a Operation> {
        None
    }
}

/// What the engine answered a call.
pub type Answer = Result<crate::engine::Response, super::Failure>;
/// An answer handed back because it was not the screen's own.
pub type Returned = Box<(Call, Answer)>;

/// Offers an answer to each screen in turn; `Err` gives it back when none
/// keeps it (the shared caches and overlays are `App`'s).
pub fn offer(app: &mut App, call: Call, result: Answer) -> Result<Vec<Call>, Returned> {
    let mut answer = Box::new((call, result));
    for tab in Tab::ALL {
        let (call, result) = *answer;
        match of(tab).on_answer(app, call, result) {
            Ok(calls) => return Ok(calls),
            Err(back) => answer = back,
        }
    }
    Err(answer)
}

/// The screen of a tab: the one list.
pub fn of(tab: Tab) -> &'static dyn Screen {
    match tab {
        Tab::Dashboard => &Dashboard,
        Tab::Tasks => &Tasks,
        Tab::Approvals => &Approvals,
        Tab::Operations => &Operations,
        Tab::History => &History,
        Tab::Audit => &Audit,
        Tab::Admin => &Admin,
    }
}

fn move_keys(app: &App) -> String {
    format!(
        "{}/{}",
        app.keys.first(Action::Up),
        app.keys.first(Action::Down)
    )
}

/// Moves a cursor over `len` rows by `d`, within bounds.
fn moved(cursor: usize, len: usize, d: isize) -> usize {
    let last = len.saturating_sub(1) as isize;
    (cursor.min(len.saturating_sub(1)) as isize)
        .saturating_add(d)
        .clamp(0, last.max(0)) as usize
}

/// A record list's `/` filter.
fn records_filter(app: &mut App, kind: Kind) -> Option<(FilterTarget, String)> {
    Some((
        FilterTarget::Records(kind),
        app.records.entry(kind).or_default().filter.clone(),
    ))
}

pub struct Dashboard;

impl Screen for Dashboard {
    fn title(&self) -> &'static str {
        "Dashboard"
    }
    fn word(&self) -> &'static str {
        "dashboard"
    }
    fn short_title(&self) -> &'static str {
        "Dash"
    }
    fn draw(&self, app: &App, frame: &mut Frame, area: Rect) {
        tabs::dashboard::draw(app, frame, area)
    }
    fn keys(&self, app: &App) -> Vec<(String, &'static str)> {
        vec![
            (move_keys(app), "select"),
            (app.keys.first(Action::Open), "open what it counts"),
        ]
    }
    fn on_key(&self, app: &mut App, key: KeyEvent, delta: Option<isize>) -> Vec<Call> {
        use tabs::dashboard::Item;
        if let Some(d) = delta {
            return self.move_cursor(app, d);
        }
        if !app.keys.is(&key, Action::Open) {
            return Vec::new();
        }
        let Some(item) = tabs::dashboard::selected(app) else {
            return Vec::new();
        };
        let admin = |app: &mut App, kind: Kind| {
            app.admin.kind = Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
            app.tab = Tab::Admin;
        };
        match item {
            Item::Waiting | Item::Review => {
                app.approvals.show_mine = false;
                app.tab = Tab::Approvals;
            }
            Item::Running => app.tab = Tab::Operations,
            Item::Failed => {
                app.tab = Tab::History;
                app.history.sessions = None;
                app.history.filter_text = "state:failed".into();
                let filter = crate::ui::app::parse_history_filter("state:failed")
                    .ok()
                    .flatten();
                return app.apply_history_filter(filter);
            }
            Item::Passwords => admin(app, Kind::Credential),
            Item::Sessions => {
                app.tab = Tab::History;
                app.history.sessions = Some(SessionsView::default());
                return vec![Call::Sessions];
            }
            Item::Freezes => admin(app, Kind::Freeze),
            Item::Records(Kind::Task) => app.tab = Tab::Tasks,
            Item::Records(kind) => admin(app, kind),
            Item::Audit => app.tab = Tab::Audit,
        }
        Vec::new()
    }
    fn move_cursor(&self, app: &mut App, d: isize) -> Vec<Call> {
        let len = tabs::dashboard::items(app).len();
        app.dashboard.selected = moved(app.dashboard.selected.min(len.saturating_sub(1)), len, d);
        Vec::new()
    }
    fn cursor(&self, app: &App) -> usize {
        app.dashboard.selected
    }
    /// The engine's numbers; asked again if something changed meanwhile.
    fn on_answer(&self, app: &mut App, call: Call, result: Answer) -> Result<Vec<Call>, Returned> {
        if call != Call::Metrics {
            return Err(Box::new((call, result)));
        }
        app.dashboard.in_flight = false;
        if let Ok(Response::Metrics(m)) = result {
            app.dashboard.metrics = Some(*m);
        }
        Ok(if app.dashboard.stale {
            app.ask_metrics().into_iter().collect()
        } else {
            Vec::new()
        })
    }
}

pub struct Tasks;

impl Screen for Tasks {
    fn title(&self) -> &'static str {
        "Tasks"
    }
    fn word(&self) -> &'static str {
        "tasks"
    }
    fn short_title(&self) -> &'static str {
        "Tasks"
    }
    fn draw(&self, app: &App, frame: &mut Frame, area: Rect) {
        tabs::tasks::draw(app, frame, area)
    }
    fn keys(&self, app: &App) -> Vec<(String, &'static str)> {
        let k = &app.keys;
        vec![
            (move_keys(app), "move"),
            (k.first(Action::Open), "request"),
            (k.first(Action::Explain), "why (not)"),
            (k.first(Action::Filter), "filter"),
        ]
    }
    fn on_key(&self, app: &mut App, key: KeyEvent, delta: Option<isize>) -> Vec<Call> {
        if app.keys.is(&key, Action::Explain) {
            // How every policy judges your request of this task now.
            if let Some(task) = app.list(Kind::Task).and_then(|l| l.selected()) {
                return vec![Call::Explain(task.name().to_string())];
            }
        } else if app.keys.is(&key, Action::Open) {
            if let Some(task) = app.list(Kind::Task).and_then(|l| l.selected()) {
                let name = task.name().to_string();
                app.status = Some((format!("opening the request form of {name}…"), false));
                return vec![Call::Terms(name)];
            }
        } else if let Some(d) = delta {
            return self.move_cursor(app, d);
        }
        Vec::new()
    }
    fn move_cursor(&self, app: &mut App, d: isize) -> Vec<Call> {
        app.records.entry(Kind::Task).or_default().move_by(d);
        Vec::new()
    }
    fn cursor(&self, app: &App) -> usize {
        app.list(Kind::Task).map(|l| l.selected).unwrap_or(0)
    }
    fn filter(&self, app: &mut App, _search_log: bool) -> Option<(FilterTarget, String)> {
        records_filter(app, Kind::Task)
    }
}

pub struct Approvals;

impl Screen for Approvals {
    fn title(&self) -> &'static str {
        "Approvals"
    }
    fn word(&self) -> &'static str {
        "approvals"
    }
    fn short_title(&self) -> &'static str {
        "Appr"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["queue", "requests"]
    }
    fn draw(&self, app: &App, frame: &mut Frame, area: Rect) {
        tabs::approvals::draw(app, frame, area)
    }
    fn keys(&self, app: &App) -> Vec<(String, &'static str)> {
        let k = &app.keys;
        if app.approvals.show_mine {
            return vec![
                (move_keys(app), "select"),
                (k.first(Action::Mine), "waiting for you"),
                (k.first(Action::Filter), "filter"),
            ];
        }
        vec![
            (move_keys(app), "select"),
            ("space".to_string(), "mark"),
            (k.first(Action::Approve), "approve"),
            (k.first(Action::Narrow), "narrow"),
            (k.first(Action::Reject), "reject"),
            (
                k.first(Action::Mine),
                if app.approvals.show_mine {
                    "waiting for you"
                } else {
                    "mine"
                },
            ),
            (k.first(Action::Filter), "filter"),
            (k.first(Action::DryRun), "dry run"),
        ]
    }
    fn filter(&self, app: &mut App, _search_log: bool) -> Option<(FilterTarget, String)> {
        Some((FilterTarget::Approvals, app.approvals.filter.clone()))
    }
    fn on_key(&self, app: &mut App, key: KeyEvent, delta: Option<isize>) -> Vec<Call> {
        if app.keys.is(&key, Action::Mine) {
            app.approvals.show_mine = !app.approvals.show_mine;
            return Vec::new();
        }
        // Your own requests: only moving through them.
        if app.approvals.show_mine {
            if let Some(d) = delta {
                app.approvals.mine_selected =
                    moved(app.approvals.mine_selected, app.approvals.mine.len(), d);
            }
            return Vec::new();
        }
        let approve = app.keys.is(&key, Action::Approve);
        if app.keys.is(&key, Action::DryRun) {
            // The selected request's playbook, with --check --diff.
            let Some(req) = app.queue.get(app.approvals.selected) else {
                return Vec::new();
            };
            let playbook =
                app.approvals.views.get(&req.id).is_some_and(|v| {
                    v.executor == crate::domain::Executor::AnsiblePlaybook.as_str()
                });
            if !playbook || req.state == RequestState::Emergency {
                app.status = Some((
                    format!("request {} runs no playbook that waits for approval: a dry run is for those", req.id),
                    true,
                ));
                return Vec::new();
            }
            app.status = Some((
                format!("asking for a dry run of request {}…", req.id),
                false,
            ));
            return vec![Call::DryRun(req.id)];
        }
        if app.keys.is(&key, Action::Narrow) {
            // Approve with the window narrowed: when it should end first.
            let ids = chosen_requests(app);
            if ids.iter().any(|id| app.all_emergencies(&[*id])) {
                app.status = Some(("an emergency run has no window left to narrow".into(), true));
            } else if !ids.is_empty() {
                app.overlays.push(crate::ui::overlay::Overlay::Ask((
                    crate::ui::overlay::Ask::Narrow(ids),
                    line_input(""),
                )));
            }
            return Vec::new();
        }
        if key.code == crossterm::event::KeyCode::Char(' ') {
            // Mark (or unmark) the selected request for a batch decision.
            if let Some(req) = app.queue.get(app.approvals.selected) {
                if !app.approvals.marked.remove(&req.id) {
                    app.approvals.marked.insert(req.id);
                }
                let n = app.approvals.marked.len();
                app.approvals.selected = moved(app.approvals.selected, app.queue.len(), 1);
                if n > 0 {
                    app.status = Some((format!("{n} marked: a or r decides them together"), false));
                }
            }
        } else if approve || app.keys.is(&key, Action::Reject) {
            let ids = chosen_requests(app);
            let emergencies = ids
                .iter()
                .filter(|id| {
                    app.queue
                        .iter()
                        .any(|r| r.id == **id && r.state == RequestState::Emergency)
                })
                .count();
            if emergencies > 0 && emergencies < ids.len() {
                app.status = Some((
                    "emergency runs are reviewed apart from requests waiting for a decision: mark only one kind".into(),
                    true,
                ));
            } else if !ids.is_empty() {
                app.overlays.push(crate::ui::overlay::Overlay::Decision((
                    ids,
                    approve,
                    line_input(""),
                )));
            }
        } else if let Some(d) = delta {
            return self.move_cursor(app, d);
        }
        Vec::new()
    }
    fn move_cursor(&self, app: &mut App, d: isize) -> Vec<Call> {
        app.approvals.selected = moved(app.approvals.selected, app.queue.len(), d);
        Vec::new()
    }
    fn cursor(&self, app: &App) -> usize {
        app.approvals.selected
    }
}

/// The keys the two operation screens share.
fn operation_keys(app: &App, history: bool) -> Vec<(String, &'static str)> {
    let k = &app.keys;
    // What the screen is for first (the footer keeps what fits, in
    // order); the log pane's own keys after.
    let mut keys = vec![(move_keys(app), "select")];
    if history {
        keys.push((k.first(Action::Open), "details"));
        keys.push((k.first(Action::Filter), "filter"));
        keys.push((k.first(Action::SearchLog), "search log"));
        keys.push((k.first(Action::Rerun), "re-run"));
    } else {
        keys.push((k.first(Action::Filter), "filter"));
        keys.push((k.first(Action::SearchLog), "search log"));
        keys.push((k.first(Action::CancelOperation), "cancel"));
        keys.push((k.first(Action::Rerun), "re-run"));
    }
    keys.extend([
        (
            format!(
                "{}/{}",
                k.first(Action::SearchNext),
                k.first(Action::SearchPrev)
            ),
            "next match",
        ),
        (
            format!("{}/{}", k.first(Action::PageUp), k.first(Action::PageDown)),
            "scroll log",
        ),
        (k.first(Action::Follow), "follow"),
        (
            format!("{}/{}", k.first(Action::LogTop), k.first(Action::LogBottom)),
            "log ends",
        ),
        (k.first(Action::LogWrap), "wrap"),
        (
            format!("{}/{}", k.first(Action::LogLeft), k.first(Action::LogRight)),
            "sideways",
        ),
        (k.first(Action::SaveLog), "save output"),
        (k.first(Action::ReleaseMouse), "release mouse"),
        (k.first(Action::DebugTrace), "debug trace"),
    ]);
    keys
}

/// The log pane's keys, the same on both operation screens; what to ask
/// when taken.
fn log_key(app: &mut App, key: &KeyEvent) -> Option<Vec<Call>> {
    if app.keys.is(key, Action::Follow) {
        app.log.toggle_follow();
    } else if app.keys.is(key, Action::LogTop) {
        app.log.jump(true);
    } else if app.keys.is(key, Action::LogBottom) {
        app.log.jump(false);
    } else if app.keys.is(key, Action::SearchNext) || app.keys.is(key, Action::SearchPrev) {
        // The last search again: n down, N up.
        let forward = app.keys.is(key, Action::SearchNext);
        if app.log.needle.is_empty() {
            app.status = Some(("search the log first".into(), true));
        } else if !app.log.search_again(forward) {
            app.status = Some((
                format!(
                    "'{}' not found {}",
                    crate::text::printable(&app.log.needle),
                    if forward { "below" } else { "above" }
                ),
                true,
            ));
        }
    } else if app.keys.is(key, Action::LogWrap) {
        app.log.toggle_wrap();
        app.status = Some((
            if app.log.wrap {
                "long lines wrap".into()
            } else {
                "long lines are cut at the edge (←/→ move sideways)".into()
            },
            false,
        ));
    } else if app.keys.is(key, Action::LogLeft) {
        app.log.scroll_sideways(-8);
    } else if app.keys.is(key, Action::LogRight) {
        if app.log.wrap {
            app.status = Some(("lines wrap: nothing is cut off to the right".into(), false));
        }
        app.log.scroll_sideways(8);
    } else if app.keys.is(key, Action::SaveLog) {
        let Some(id) = app.log.op else {
            app.status = Some(("select an operation first".into(), true));
            return Some(Vec::new());
        };
        app.overlays.push(crate::ui::overlay::Overlay::Ask((
            crate::ui::overlay::Ask::SaveOutput(id),
            line_input(&format!("gatehouse-operation-{id}.log")),
        )));
    } else if app.keys.is(key, Action::ReleaseMouse) {
        app.mouse_released = !app.mouse_released;
        app.status = Some((
            if app.mouse_released {
                format!(
                    "the mouse is the terminal's: select and copy as usual; {} takes it back",
                    app.keys.first(Action::ReleaseMouse)
                )
            } else {
                "the mouse is the TUI's again (clicks and the wheel)".into()
            },
            false,
        ));
        return Some(vec![Call::MouseCapture(!app.mouse_released)]);
    } else if app.keys.is(key, Action::PageUp) {
        app.log.scroll(20);
    } else if app.keys.is(key, Action::PageDown) {
        app.log.scroll(-20);
    } else if app.keys.is(key, Action::DebugTrace) {
        // The trace beside the output, or not: read the log again.
        app.log.debug = !app.log.debug;
        app.status = Some((
            if app.log.debug {
                "showing the debug trace (needs view-execution-debug)".into()
            } else {
                "showing the output alone".into()
            },
            false,
        ));
        let Some(id) = app.log.op else {
            return Some(Vec::new());
        };
        app.log.select(id);
        return Some(vec![Call::Output {
            id,
            from: 0,
            debug: app.log.debug,
        }]);
    } else {
        return None;
    }
    Some(Vec::new())
}

pub struct Operations;

impl Screen for Operations {
    fn title(&self) -> &'static str {
        "Operations"
    }
    fn word(&self) -> &'static str {
        "operations"
    }
    fn short_title(&self) -> &'static str {
        "Ops"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["ops", "running"]
    }
    fn draw(&self, app: &App, frame: &mut Frame, area: Rect) {
        tabs::operations::draw(app, frame, area)
    }
    fn keys(&self, app: &App) -> Vec<(String, &'static str)> {
        operation_keys(app, false)
    }
    fn on_key(&self, app: &mut App, key: KeyEvent, delta: Option<isize>) -> Vec<Call> {
        if let Some(calls) = log_key(app, &key) {
            return calls;
        }
        if app.keys.is(&key, Action::Rerun) {
            // As in History: a new request, through the form, filled.
            if let Some(op) = app.selected_live() {
                let spec = rerun_spec(op, &app.live_ops);
                let task = spec.task.clone();
                app.prefill = Some(spec);
                return vec![Call::Terms(task)];
            }
            return Vec::new();
        }
        if app.keys.is(&key, Action::CancelOperation) {
            if let Some(op) = app.selected_live().cloned() {
                if op.state.is_final() {
                    app.status = Some((
                        format!("operation {} has ended ({})", op.id, op.state),
                        true,
                    ));
                    return Vec::new();
                }
                app.overlays.push(crate::ui::overlay::Overlay::Confirm(
                    Confirm::CancelOperation(op.id),
                ));
                app.status = Some((
                    format!(
                        "cancel operation {} ({} on {})? y to confirm",
                        op.id, op.task, op.device
                    ),
                    true,
                ));
            }
        } else if let Some(d) = delta {
            return self.move_cursor(app, d);
        }
        Vec::new()
    }
    fn move_cursor(&self, app: &mut App, d: isize) -> Vec<Call> {
        app.operations.selected = moved(app.operations.selected, app.live_view().len(), d);
        Vec::new()
    }
    fn cursor(&self, app: &App) -> usize {
        app.operations.selected
    }
    fn filter(&self, app: &mut App, search_log: bool) -> Option<(FilterTarget, String)> {
        // As in History: / narrows the list, s searches the log.
        Some(if search_log {
            (FilterTarget::Log, String::new())
        } else {
            (FilterTarget::Live, app.operations.filter.clone())
        })
    }
    fn searches_log(&self) -> bool {
        true
    }
    fn selected_operation<'a>(&self, app: &'a App) -> Option<&'a Operation> {
        app.selected_live()
    }
}

pub struct History;

impl Screen for History {
    fn title(&self) -> &'static str {
        "History"
    }
    fn word(&self) -> &'static str {
        "history"
    }
    fn short_title(&self) -> &'static str {
        "Hist"
    }
    fn draw(&self, app: &App, frame: &mut Frame, area: Rect) {
        match &app.history.sessions {
            Some(view) => tabs::sessions::draw(app, frame, area, view),
            None => tabs::operations::draw(app, frame, area),
        }
    }
    fn keys(&self, app: &App) -> Vec<(String, &'static str)> {
        let k = &app.keys;
        if app.history.sessions.is_some() {
            return vec![
                (move_keys(app), "select"),
                (k.first(Action::Open), "replay"),
                (k.first(Action::Watch), "watch"),
                (k.first(Action::EndSession), "end"),
                (k.first(Action::Sessions), "operations"),
            ];
        }
        let mut keys = operation_keys(app, true);
        keys.push((k.first(Action::Sessions), "sessions"));
        keys
    }
    fn on_key(&self, app: &mut App, key: KeyEvent, delta: Option<isize>) -> Vec<Call> {
        if app.keys.is(&key, Action::Sessions) {
            if app.history.sessions.take().is_some() {
                return Vec::new();
            }
            app.history.sessions = Some(SessionsView::default());
            return vec![Call::Sessions];
        }
        if let Some(view) = app.history.sessions.as_mut() {
            let chosen = view.list.get(view.selected).map(|s| (s.id, s.is_open()));
            let k = app.keys.clone();
            return match chosen {
                Some((id, _)) if k.is(&key, Action::Open) => vec![Call::Replay(id)],
                Some((id, true)) if k.is(&key, Action::Watch) => vec![Call::Watch(id)],
                Some((id, true)) if k.is(&key, Action::EndSession) => {
                    app.overlays.push(crate::ui::overlay::Overlay::Ask((
                        crate::ui::overlay::Ask::EndSession(id),
                        crate::ui::app::line_input(""),
                    )));
                    Vec::new()
                }
                Some((id, false))
                    if k.is(&key, Action::Watch) || k.is(&key, Action::EndSession) =>
                {
                    app.status = Some((format!("session {id} has ended"), true));
                    Vec::new()
                }
                _ => match delta {
                    Some(d) => {
                        view.selected = moved(view.selected, view.list.len(), d);
                        Vec::new()
                    }
                    None => Vec::new(),
                },
            };
        }
        if app.keys.is(&key, Action::Rerun) {
            if let Some(op) = app.history.ops.get(app.history.selected) {
                let spec = rerun_spec(op, &app.history.ops);
                app.status = Some((
                    format!(
                        "re-run of {} on {}: a new request, through its policy",
                        op.task,
                        spec.devices.join(", ")
                    ),
                    false,
                ));
                let task = spec.task.clone();
                app.prefill = Some(spec);
                return vec![Call::Terms(task)];
            }
            return Vec::new();
        }
        if app.keys.is(&key, Action::Open) {
            if let Some(op) = app.history.ops.get(app.history.selected) {
                let (id, request, bypass) = (op.id, op.request, op.superuser_bypass);
                app.overlays
                    .push(crate::ui::overlay::Overlay::Detail((id, None)));
                // A Superuser's own run has no request to load.
                app.history.detail_note = bypass.then(|| {
                    "run by a Superuser without a request: no policy, no approval (the audit holds its reason and justification)".to_string()
                });
                return if bypass {
                    Vec::new()
                } else {
                    vec![Call::RequestOf(request)]
                };
            }
            return Vec::new();
        }
        if let Some(calls) = log_key(app, &key) {
            return calls;
        }
        match delta {
            Some(d) => self.move_cursor(app, d),
            None => Vec::new(),
        }
    }
    /// Its pages, the filter's answers and the request behind a detail.
    fn on_answer(&self, app: &mut App, call: Call, result: Answer) -> Result<Vec<Call>, Returned> {
        let page = |ops: &Vec<Operation>| ops.len() < HISTORY_PAGE as usize;
        if matches!(call, Call::HistoryBefore(_) | Call::HistoryFiltered(_)) {
            app.history.loading = false;
        }
        let h = &mut app.history;
        match (call, result) {
            (Call::HistoryBefore(before), Ok(Response::Operations(ops))) => {
                // Append only if it still continues what is loaded.
                if h.ops.last().map(|o| o.id) == Some(before) {
                    h.complete = page(&ops);
                    h.ops.extend(ops);
                }
            }
            (Call::HistoryFiltered(filter), Ok(Response::Operations(ops))) => {
                // Only the answer to the filter in force counts.
                if Some(&filter_key(&filter)) == h.filter.as_ref().map(filter_key).as_ref() {
                    match filter.before {
                        Some(before) if h.ops.last().map(|o| o.id) == Some(before) => {
                            h.complete = page(&ops);
                            h.ops.extend(ops);
                        }
                        Some(_) => {}
                        None => {
                            h.complete = page(&ops);
                            h.ops = ops;
                            h.selected = 0;
                        }
                    }
                }
            }
            // An unfiltered page arriving while a filter is in force is stale.
            (Call::History, Ok(Response::Operations(_))) if h.filter.is_some() => {}
            (Call::History, Ok(Response::Operations(ops))) => {
                h.complete = page(&ops);
                h.ops = ops;
                h.selected = h.selected.min(h.ops.len().saturating_sub(1));
            }
            (Call::Sessions, Ok(Response::Sessions(list))) => {
                if let Some(view) = h.sessions.as_mut() {
                    view.selected = view.selected.min(list.len().saturating_sub(1));
                    view.list = list;
                }
            }
            (Call::EndSession { id, .. }, Ok(_)) => {
                app.status = Some((format!("session {id} ended; its user sees why"), false));
            }
            (Call::RequestOf(_), Err(e)) => {
                app.history.detail_note = Some(e.to_string());
            }
            (Call::RequestOf(id), Ok(Response::Requests(mut found))) => {
                if let Some((_, request)) = app.detail_mut() {
                    if found.first().map(|r| r.id) == Some(id) {
                        *request = found.pop();
                    }
                }
            }
            other => return Err(Box::new(other)),
        }
        Ok(Vec::new())
    }
    fn move_cursor(&self, app: &mut App, d: isize) -> Vec<Call> {
        app.history.selected = moved(app.history.selected, app.history.ops.len(), d);
        app.next_history_page()
    }
    fn cursor(&self, app: &App) -> usize {
        app.history.selected
    }
    fn filter(&self, app: &mut App, search_log: bool) -> Option<(FilterTarget, String)> {
        Some(if search_log {
            (FilterTarget::Log, String::new())
        } else {
            (FilterTarget::History, app.history.filter_text.clone())
        })
    }
    fn searches_log(&self) -> bool {
        true
    }
    fn selected_operation<'a>(&self, app: &'a App) -> Option<&'a Operation> {
        app.history.ops.get(app.history.selected)
    }
}

pub struct Audit;

impl Screen for Audit {
    fn title(&self) -> &'static str {
        "Audit"
    }
    fn word(&self) -> &'static str {
        "audit"
    }
    fn short_title(&self) -> &'static str {
        "Audit"
    }
    fn draw(&self, app: &App, frame: &mut Frame, area: Rect) {
        tabs::audit::draw(app, frame, area)
    }
    fn keys(&self, app: &App) -> Vec<(String, &'static str)> {
        let k = &app.keys;
        vec![
            (move_keys(app), "move"),
            (k.first(Action::Open), "details"),
            (k.first(Action::Filter), "filter"),
            (k.first(Action::Export), "export"),
            (
                format!("{}/{}", k.first(Action::Top), k.first(Action::Bottom)),
                "first/last",
            ),
        ]
    }
    fn on_key(&self, app: &mut App, key: KeyEvent, delta: Option<isize>) -> Vec<Call> {
        if app.keys.is(&key, Action::Open) {
            let events = app.audit_view();
            let at = app.audit.selected.min(events.len().saturating_sub(1));
            if let Some(e) = events.get(at) {
                let lines = tabs::audit::event_detail(app, e);
                let title = format!(" Audit event {} ", e.seq);
                app.overlays
                    .push(crate::ui::overlay::Overlay::Text((title, lines)));
            }
            return Vec::new();
        }
        if app.keys.is(&key, Action::Export) {
            // Asked, not assumed: the file is the user's, readable by them alone.
            let path = std::env::current_dir().unwrap_or_default().join(format!(
                "gatehouse-audit-{}.jsonl",
                chrono::Utc::now().format("%Y%m%d-%H%M%S")
            ));
            app.overlays
                .push(crate::ui::overlay::Overlay::Export(line_input(
                    &path.display().to_string(),
                )));
            return Vec::new();
        }
        match delta {
            Some(d) => self.move_cursor(app, d),
            None => Vec::new(),
        }
    }
    /// The newest events; the cursor stays at the end if it was there.
    fn on_answer(&self, app: &mut App, call: Call, result: Answer) -> Result<Vec<Call>, Returned> {
        match (call, result) {
            (Call::AuditTail, Ok(Response::AuditEvents(events))) => {
                let a = &mut app.audit;
                let keep_tail = a.selected.saturating_add(1) >= a.events.len();
                a.events = events;
                if keep_tail {
                    a.selected = a.events.len().saturating_sub(1);
                }
                Ok(Vec::new())
            }
            other => Err(Box::new(other)),
        }
    }
    fn move_cursor(&self, app: &mut App, d: isize) -> Vec<Call> {
        let len = app.audit_view().len();
        app.audit.selected = moved(app.audit.selected, len, d);
        Vec::new()
    }
    fn cursor(&self, app: &App) -> usize {
        app.audit.selected
    }
    fn filter(&self, app: &mut App, _search_log: bool) -> Option<(FilterTarget, String)> {
        Some((FilterTarget::Audit, app.audit.filter.clone()))
    }
}

pub struct Admin;

impl Screen for Admin {
    fn title(&self) -> &'static str {
        "Admin"
    }
    fn word(&self) -> &'static str {
        "admin"
    }
    fn short_title(&self) -> &'static str {
        "Admin"
    }
    fn draw(&self, app: &App, frame: &mut Frame, area: Rect) {
        tabs::admin::draw(app, frame, area)
    }
    fn keys(&self, app: &App) -> Vec<(String, &'static str)> {
        let k = &app.keys;
        let mut keys = vec![
            (
                format!(
                    "{}/{}",
                    k.first(Action::PrevKind),
                    k.first(Action::NextKind)
                ),
                "kind",
            ),
            (move_keys(app), "move"),
            (k.first(Action::New), "new"),
            (k.first(Action::Edit), "edit"),
            (k.first(Action::Clone), "clone"),
            (k.first(Action::Toggle), "enable/disable"),
            (k.first(Action::Delete), "delete"),
            (k.first(Action::Filter), "filter"),
        ];
        match app.admin_kind() {
            Kind::Template => keys.push((k.first(Action::Revisions), "revisions")),
            Kind::Device => {
                keys.push((k.first(Action::Connect), "connect"));
                keys.push((k.first(Action::Trust), "trust host key"));
            }
            Kind::Credential => {
                keys.push((k.first(Action::ChangePassword), "change password"));
                keys.push((k.first(Action::Reveal), "reveal"));
            }
            _ => {}
        }
        keys
    }
    /// Credentials' states (asked after each list of credentials), a
    /// change started, a password revealed.
    fn on_answer(&self, app: &mut App, call: Call, result: Answer) -> Result<Vec<Call>, Returned> {
        match (call, result) {
            (Call::List(Kind::Credential), Ok(Response::Records(records))) => {
                app.records
                    .entry(Kind::Credential)
                    .or_default()
                    .replace(records);
                Ok(vec![Call::CredentialStates])
            }
            (Call::List(Kind::User), Ok(Response::Records(records))) => {
                app.records.entry(Kind::User).or_default().replace(records);
                Ok(vec![Call::Groups])
            }
            (Call::Groups, Ok(Response::Groups(groups))) => {
                app.admin.groups = groups;
                Ok(Vec::new())
            }
            (Call::CredentialStates, Ok(Response::CredentialStates(states))) => {
                app.admin.credential_states =
                    states.into_iter().map(|s| (s.name, s.status)).collect();
                Ok(Vec::new())
            }
            (Call::ChangeCredential(name), Ok(Response::Requested { operations, .. })) => {
                app.status = Some((
                    format!(
                        "password change of {name} started: operation(s) {} (Operations shows it)",
                        operations
                            .iter()
                            .map(|o| o.id.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    false,
                ));
                Ok(vec![Call::CredentialStates])
            }
            (Call::RevealCredential { name, .. }, Ok(Response::Revealed(secret))) => {
                app.status = Some((
                    format!("the password of {name} is shown for 30 s (audited); Esc hides it"),
                    false,
                ));
                app.admin.revealed = Some((name, secret));
                Ok(Vec::new())
            }
            (Call::RevealCredential { name, .. }, Ok(Response::Filed(req))) => {
                app.status = Some((
                    format!(
                        "request {} to reveal {name} is {}; once approved, reveal again (before {})",
                        req.id, req.state, req.window_end
                    ),
                    false,
                ));
                Ok(Vec::new())
            }
            (call, result) => Err(Box::new((call, result))),
        }
    }
    fn on_key(&self, app: &mut App, key: KeyEvent, delta: Option<isize>) -> Vec<Call> {
        app.on_admin_key(key, delta)
    }
    fn move_cursor(&self, app: &mut App, d: isize) -> Vec<Call> {
        let kind = app.admin_kind();
        app.records.entry(kind).or_default().move_by(d);
        Vec::new()
    }
    fn cursor(&self, app: &App) -> usize {
        app.list(app.admin_kind()).map(|l| l.selected).unwrap_or(0)
    }
    fn filter(&self, app: &mut App, _search_log: bool) -> Option<(FilterTarget, String)> {
        let kind = app.admin_kind();
        records_filter(app, kind)
    }
}

/// What a decision on the Approvals tab is about: the marked requests
/// (those still waiting), else the selected one.
fn chosen_requests(app: &App) -> Vec<crate::domain::Id> {
    let marked: Vec<crate::domain::Id> = app
        .queue
        .iter()
        .filter(|r| app.approvals.marked.contains(&r.id))
        .map(|r| r.id)
        .collect();
    if marked.is_empty() {
        app.queue
            .get(app.approvals.selected)
            .map(|r| vec![r.id])
            .unwrap_or_default()
    } else {
        marked
    }
}

/// "request 4" or "requests 4, 5, 6", for prompts and the status line.
pub fn requests_text(ids: &[crate::domain::Id]) -> String {
    match ids {
        [one] => format!("request {one}"),
        many => format!(
            "requests {}",
            many.iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The status line after a batch decision: each outcome, failures first.
pub fn decided_status(outcomes: &[crate::engine::api::Decided]) -> (String, bool) {
    let failed: Vec<String> = outcomes
        .iter()
        .filter_map(|d| {
            d.outcome
                .as_ref()
                .err()
                .map(|why| format!("request {}: {why}", d.id))
        })
        .collect();
    let done: Vec<String> = outcomes
        .iter()
        .filter_map(|d| {
            d.outcome
                .as_ref()
                .ok()
                .map(|state| format!("request {}: {state}", d.id))
        })
        .collect();
    let text = failed
        .iter()
        .chain(done.iter())
        .cloned()
        .collect::<Vec<_>>()
        .join(" · ");
    (crate::text::printable(&text), !failed.is_empty())
}

/// A re-run of `op`'s request as a new request: the same task and
/// values; on the devices of that request that did not succeed when `op`
/// failed (a retry of the failures), else on all of them (as far as
/// History shows them).
pub fn rerun_spec(
    op: &crate::domain::Operation,
    history: &[crate::domain::Operation],
) -> crate::engine::RequestSpec {
    let same: Vec<&crate::domain::Operation> = history
        .iter()
        .filter(|o| o.request == op.request && o.task == op.task && op.request.0 != 0)
        .collect();
    let failed = !op.state.is_success();
    let mut devices: Vec<String> = same
        .iter()
        .filter(|o| !failed || !o.state.is_success())
        .map(|o| o.device.clone())
        .collect();
    if !devices.contains(&op.device) {
        devices.push(op.device.clone());
    }
    devices.sort();
    devices.dedup();
    crate::engine::RequestSpec {
        task: op.task.clone(),
        devices,
        variables: op.variables.clone(),
        ..Default::default()
    }
}
