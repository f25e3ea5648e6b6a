//! The authorization model holds for the engine as a whole (issue 12): over
//! random roles, scopes, resource grants, policies and users, random
//! commands (lists, imports of changed and new records, enable and disable,
//! delete, clone, requests and schedules, history, requests, output and
//! subscriptions) never let anyone read or change a record or an output,
//! or start a run, that `access::authorize` does not allow them, judged on
//! the store as it was before the command; and no operation starts with
//! other content than its request pinned.
//!
//! The engine runs in-process on a real store in a temporary directory;
//! local templates run on this host as the test's own user. `AUTHZ_CASES`
//! sets how many random worlds are tried (default 12).

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

use gatehouse::access::{self, Effect, Facts, Principal};
use gatehouse::domain::{ExecutionRequest, Executor, Kind, Operation, Record, Role, User};
use gatehouse::engine::{
    Command, Engine, Event, HistoryFilter, ImportItem, RequestSpec, Response, Verdict,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::collections::BTreeMap;
use std::sync::Arc;

const USERS: [&str; 4] = ["alice", "bob", "carol", "dave"];
/// Who issues commands: the users, and now and then root (a Superuser),
/// whose runs give the others something to be refused the sight of.
const ACTORS: [&str; 5] = ["alice", "bob", "carol", "dave", "root"];
const ENVS: [&str; 2] = ["staging", "production"];
const TASKS: [&str; 4] = ["t-stage", "t-prod", "t-local", "t-chain"];
const TEMPLATES: [&str; 2] = ["remote", "loc"];
const DEVICES: [&str; 2] = ["d-stage", "d-prod"];

/// A grant: an action's index, scoped to these environments' indexes.
type GrantSpec = (usize, Vec<usize>);
/// A resource grant: kind, name and levels, by index.
type ResourceSpec = (usize, usize, Vec<usize>);

/// One random world: who holds what.
#[derive(Clone, Debug)]
struct World {
    /// Per role: its grants and its resource grants.
    roles: Vec<(Vec<GrantSpec>, Vec<ResourceSpec>)>,
    /// Per user: the roles held, enabled.
    users: Vec<(Vec<usize>, bool)>,
    /// The policy: users, environments, approval needed.
    policy: (Vec<usize>, Vec<usize>, bool),
}

#[derive(Clone, Debug)]
enum Cmd {
    List(usize),
    /// Change a stored record: device (new environment, address), template
    /// (executor), task (environment, template, children).
    ChangeDevice(usize, usize, u8),
    ChangeTemplate(usize, bool),
    ChangeTask(usize, usize, usize, bool),
    Toggle(usize, usize, bool),
    Delete(usize, usize),
    Clone(usize, usize),
    Request(usize, bool),
    History,
    Requests,
    Output(usize),
}

const KINDS: [Kind; 4] = [Kind::Device, Kind::Template, Kind::Task, Kind::Policy];

fn world() -> impl Strategy<Value = World> {
    let grant = (
        0..gatehouse::domain::Permission::ALL.len(),
        proptest::collection::vec(0..2usize, 0..=1),
    );
    let resource = (
        0..3usize,
        0..4usize,
        proptest::collection::vec(0..4usize, 1..=3),
    );
    let role = (
        proptest::collection::vec(grant, 0..7),
        proptest::collection::vec(resource, 0..3),
    );
    (
        proptest::collection::vec(role, 3),
        proptest::collection::vec(
            (
                proptest::collection::vec(0..3usize, 0..=2),
                proptest::bool::weighted(0.85),
            ),
            4,
        ),
        (
            proptest::collection::vec(0..4usize, 0..=4),
            proptest::collection::vec(0..2usize, 0..=2),
            any::<bool>(),
        ),
    )
        .prop_map(|(roles, users, policy)| World {
            roles,
            users,
            policy,
        })
}

fn command() -> impl Strategy<Value = (usize, Cmd)> {
    let cmd = prop_oneof![
        (0..KINDS.len()).prop_map(Cmd::List),
        (0..2usize, 0..2usize, any::<u8>()).prop_map(|(d, e, a)| Cmd::ChangeDevice(d, e, a)),
        (0..2usize, any::<bool>()).prop_map(|(t, l)| Cmd::ChangeTemplate(t, l)),
        (0..4usize, 0..2usize, 0..2usize, any::<bool>())
            .prop_map(|(t, e, tpl, c)| Cmd::ChangeTask(t, e, tpl, c)),
        (0..3usize, 0..4usize, any::<bool>()).prop_map(|(k, n, e)| Cmd::Toggle(k, n, e)),
        (0..3usize, 0..4usize).prop_map(|(k, n)| Cmd::Delete(k, n)),
        (0..3usize, 0..4usize).prop_map(|(k, n)| Cmd::Clone(k, n)),
        (0..4usize, proptest::bool::weighted(0.2)).prop_map(|(t, s)| Cmd::Request(t, s)),
        Just(Cmd::History),
        Just(Cmd::Requests),
        (0..8usize).prop_map(Cmd::Output),
    ];
    (0..ACTORS.len(), cmd)
}

/// The seed records of a world, as an import file.
fn seed(w: &World) -> String {
    let mut text = String::from(
        r#"
[[environment]]
name = "staging"
[[environment]]
name = "production"
[[system]]
name = "db"
[[device]]
name = "d-stage"
address = "127.0.0.1"
port = 1
environment = "staging"
system = "db"
[[device]]
name = "d-prod"
address = "127.0.0.1"
port = 1
environment = "production"
system = "db"
[[credential]]
name = "none"
username = "nobody"
[[template]]
name = "remote"
executor = "ssh-script"
content = "true"
[[template]]
name = "loc"
executor = "local"
content = "true"
[[task]]
name = "t-local"
template = "loc"
environment = "production"
system = "db"
devices = ["d-prod"]
credential = "none"
timeout = 5
[[task]]
name = "t-stage"
template = "remote"
environment = "staging"
system = "db"
devices = ["d-stage"]
credential = "none"
timeout = 5
[[task]]
name = "t-prod"
template = "remote"
environment = "production"
system = "db"
devices = ["d-prod"]
credential = "none"
timeout = 5
schedule = "0 0 1 1 *"
[[task]]
name = "t-chain"
template = "remote"
environment = "staging"
system = "db"
devices = ["d-stage"]
credential = "none"
children = ["t-local"]
timeout = 5
"#,
    );
    let levels = ["read", "write", "delete", "run"];
    let kinds = [
        ("task", &TASKS[..]),
        ("template", &TEMPLATES[..]),
        ("device", &DEVICES[..]),
    ];
    for (i, (grants, resources)) in w.roles.iter().enumerate() {
        text.push_str(&format!("[[role]]\nname = \"r{i}\"\ngrants = ["));
        for (a, envs) in grants {
            let action = gatehouse::domain::Permission::ALL[*a];
            let scope = if action.is_scoped_by_environment() && !envs.is_empty() {
                format!(
                    ", environments = [{}]",
                    envs.iter()
                        .map(|e| format!("\"{}\"", ENVS[*e]))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else {
                String::new()
            };
            text.push_str(&format!("{{ action = \"{}\"{scope} }}, ", action.as_str()));
        }
        text.push_str("]\nresources = [");
        for (k, n, ls) in resources {
            let (kind, names) = kinds[*k];
            let name = names[*n % names.len()];
            let mut ls: Vec<&str> = ls.iter().map(|l| levels[*l]).collect();
            ls.sort();
            ls.dedup();
            text.push_str(&format!(
                "{{ kind = \"{kind}\", name = \"{name}\", levels = [{}] }}, ",
                ls.iter()
                    .map(|l| format!("\"{l}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        text.push_str("]\n");
    }
    for (i, (roles, enabled)) in w.users.iter().enumerate() {
        let mut rs: Vec<String> = roles.iter().map(|r| format!("\"r{r}\"")).collect();
        rs.sort();
        rs.dedup();
        text.push_str(&format!(
            "[[user]]\nlogin = \"{}\"\nenabled = {enabled}\nroles = [{}]\n",
            USERS[i],
            rs.join(", ")
        ));
    }
    let (users, envs, approval) = &w.policy;
    let mut users: Vec<&str> = users.iter().map(|u| USERS[*u]).collect();
    users.sort();
    users.dedup();
    let mut envs: Vec<&str> = envs.iter().map(|e| ENVS[*e]).collect();
    envs.sort();
    envs.dedup();
    text.push_str(&format!(
        "[[policy]]\nname = \"p\"\nusers = [{}]\nenvironments = [{}]\nrequires_approval = {approval}\n{}",
        users.iter().map(|u| format!("\"{u}\"")).collect::<Vec<_>>().join(", "),
        envs.iter().map(|e| format!("\"{e}\"")).collect::<Vec<_>>().join(", "),
        if *approval { "approvers = [{ user = \"root\", level = 1 }]\n" } else { "" }
    ));
    text
}

/// The store at one moment: records by kind and name, and what
/// authorization asks of it.
struct Snapshot {
    records: BTreeMap<(Kind, String), Record>,
}

impl Snapshot {
    fn take(engine: &Engine) -> Snapshot {
        let mut records = BTreeMap::new();
        for kind in Kind::ALL {
            for r in engine.store().list(kind).unwrap() {
                records.insert((kind, r.name().to_string()), r);
            }
        }
        Snapshot { records }
    }

    fn get(&self, kind: Kind, name: &str) -> Option<&Record> {
        self.records.get(&(kind, name.to_string()))
    }

    /// The principal of `login`, as the store says.
    fn principal(&self, login: &str) -> Option<(User, Vec<Role>)> {
        let Some(Record::User(user)) = self.get(Kind::User, login) else {
            return None;
        };
        let roles = user
            .roles
            .iter()
            .filter_map(|r| match self.get(Kind::Role, r) {
                Some(Record::Role(role)) => Some(role.clone()),
                _ => None,
            })
            .collect();
        Some((user.clone(), roles))
    }

    fn environment_of_task(&self, task: &str) -> Option<String> {
        match self.get(Kind::Task, task) {
            Some(Record::Task(t)) => Some(t.environment.clone()),
            _ => None,
        }
    }
}

/// The snapshot's records with some put over them (an import's).
struct With<'a> {
    base: &'a Snapshot,
    over: Vec<Record>,
}

impl Facts for With<'_> {
    fn executor_of(&self, template: &str) -> Option<Executor> {
        let found = self
            .over
            .iter()
            .find(|r| r.kind() == Kind::Template && r.name() == template)
            .or_else(|| self.base.get(Kind::Template, template));
        match found {
            Some(Record::Template(t)) => Some(t.executor),
            _ => None,
        }
    }
    fn task_parts(&self, task: &str) -> Option<(String, Vec<String>)> {
        let found = self
            .over
            .iter()
            .find(|r| r.kind() == Kind::Task && r.name() == task)
            .or_else(|| self.base.get(Kind::Task, task));
        match found {
            Some(Record::Task(t)) => Some((t.template.clone(), t.children.clone())),
            _ => None,
        }
    }
}

#[derive(Default)]
struct Tally {
    allowed: usize,
    denied: usize,
    runs: usize,
    events_sent: usize,
}

fn resource(kind: usize, n: usize) -> (Kind, &'static str) {
    match kind {
        0 => (Kind::Device, DEVICES[n % 2]),
        1 => (Kind::Template, TEMPLATES[n % 2]),
        _ => (Kind::Task, TASKS[n % 4]),
    }
}

/// Runs one command and checks what it did against the model.
async fn check(
    engine: &Arc<Engine>,
    login: &str,
    cmd: &Cmd,
    tally: &mut Tally,
) -> Result<(), String> {
    let before = Snapshot::take(engine);
    let Some((user, roles)) = before.principal(login) else {
        return Ok(());
    };
    let who = Principal {
        user: &user,
        roles: roles.iter().collect(),
        groups: &[],
    };
    let none = With {
        base: &before,
        over: vec![],
    };
    let allowed =
        |effect: Effect<'_>, facts: &dyn Facts| access::authorize(&who, effect, facts).is_ok();
    // The command, and the effect the model must allow if it succeeds.
    let fail = |what: String| Err(format!("{login}: {cmd:?}: {what}"));
    let (command, needed): (Command, Option<Box<dyn Fn() -> bool + '_>>) = match cmd {
        Cmd::List(k) => (Command::List { kind: KINDS[*k] }, None),
        Cmd::ChangeDevice(d, e, a) => {
            let Some(Record::Device(mut dev)) = before.get(Kind::Device, DEVICES[*d]).cloned()
            else {
                return Ok(());
            };
            let stored = Record::Device(dev.clone());
            dev.environment = ENVS[*e].to_string();
            dev.address = format!("127.0.0.{}", a % 200 + 2);
            // Keep segmentation valid: a moved device leaves its tasks' environment.
            let incoming = Record::Device(dev);
            let facts = With {
                base: &before,
                over: vec![incoming.clone()],
            };
            let ok = allowed(
                Effect::Change {
                    stored: Some(&stored),
                    incoming: &incoming,
                },
                &facts,
            );
            (import(incoming), Some(Box::new(move || ok)))
        }
        Cmd::ChangeTemplate(t, local) => {
            let Some(Record::Template(mut tpl)) =
                before.get(Kind::Template, TEMPLATES[*t]).cloned()
            else {
                return Ok(());
            };
            let stored = Record::Template(tpl.clone());
            tpl.executor = if *local {
                Executor::Local
            } else {
                Executor::SshScript
            };
            tpl.content = "echo changed".into();
            let incoming = Record::Template(tpl);
            let facts = With {
                base: &before,
                over: vec![incoming.clone()],
            };
            let ok = allowed(
                Effect::Change {
                    stored: Some(&stored),
                    incoming: &incoming,
                },
                &facts,
            ) && allowed(
                Effect::Change {
                    stored: Some(&stored),
                    incoming: &stored,
                },
                &none,
            );
            (import(incoming), Some(Box::new(move || ok)))
        }
        Cmd::ChangeTask(t, e, tpl, chain) => {
            let Some(Record::Task(mut task)) = before.get(Kind::Task, TASKS[*t]).cloned() else {
                return Ok(());
            };
            let stored = Record::Task(task.clone());
            task.environment = ENVS[*e].to_string();
            task.devices = vec![DEVICES[*e].to_string()];
            task.template = TEMPLATES[*tpl].to_string();
            task.children = if *chain && task.meta.name != "t-local" {
                vec!["t-local".into()]
            } else {
                vec![]
            };
            let incoming = Record::Task(task);
            let facts = With {
                base: &before,
                over: vec![incoming.clone()],
            };
            let ok = allowed(
                Effect::Change {
                    stored: Some(&stored),
                    incoming: &incoming,
                },
                &facts,
            ) && allowed(
                Effect::Change {
                    stored: Some(&stored),
                    incoming: &stored,
                },
                &none,
            );
            (import(incoming), Some(Box::new(move || ok)))
        }
        Cmd::Toggle(k, n, enabled) => {
            let (kind, name) = resource(*k, *n);
            let Some(stored) = before.get(kind, name) else {
                return Ok(());
            };
            let ok = allowed(Effect::Toggle(stored), &none);
            (
                Command::SetEnabled {
                    kind,
                    name: name.into(),
                    enabled: *enabled,
                },
                Some(Box::new(move || ok)),
            )
        }
        Cmd::Delete(k, n) => {
            let (kind, name) = resource(*k, *n);
            let Some(stored) = before.get(kind, name) else {
                return Ok(());
            };
            let ok = allowed(Effect::Delete(stored), &none);
            (
                Command::Delete {
                    kind,
                    name: name.into(),
                },
                Some(Box::new(move || ok)),
            )
        }
        Cmd::Clone(k, n) => {
            let (kind, name) = resource(*k, *n);
            let Some(stored) = before.get(kind, name) else {
                return Ok(());
            };
            let mut copy = stored.clone();
            copy.meta_mut().name = format!("{name}-copy");
            let facts = With {
                base: &before,
                over: vec![copy.clone()],
            };
            let ok = allowed(
                Effect::Change {
                    stored: None,
                    incoming: &copy,
                },
                &facts,
            );
            (
                Command::Clone {
                    kind,
                    from: name.into(),
                    to: format!("{name}-copy"),
                },
                Some(Box::new(move || ok)),
            )
        }
        Cmd::Request(t, schedule) => {
            let Some(Record::Task(task)) = before.get(Kind::Task, TASKS[*t]).cloned() else {
                return Ok(());
            };
            let ok = allowed(Effect::Request(&task), &none);
            (
                Command::Request(RequestSpec {
                    task: task.meta.name.clone(),
                    justification: Some("property".into()),
                    schedule: *schedule,
                    ..Default::default()
                }),
                Some(Box::new(move || ok)),
            )
        }
        Cmd::History => (Command::History(HistoryFilter::default()), None),
        Cmd::Requests => (Command::Requests { mine: false }, None),
        Cmd::Output(i) => {
            let ops = engine
                .store()
                .operations_newest_first(None, 8, None, |_| true)
                .unwrap();
            let Some(op) = ops.get(*i % ops.len().max(1)) else {
                return Ok(());
            };
            let env = before.environment_of_task(&op.task);
            let decided = decided(engine, login, op);
            let ok = allowed(
                Effect::SeeOperation {
                    requested_by: &op.requested_by,
                    environment: env.as_deref(),
                    decided,
                },
                &none,
            );
            (
                Command::Output {
                    id: op.id,
                    from: 0,
                    limit: 100,
                    debug: false,
                },
                Some(Box::new(move || ok)),
            )
        }
    };
    let result = engine.handle(login, command).await;
    match (&result, &needed) {
        (Ok(_), Some(model)) if !model() => {
            return fail("succeeded where the model denies it".into())
        }
        (Ok(_), Some(_)) => tally.allowed += 1,
        (Err(_), _) => tally.denied += 1,
        _ => {}
    }
    // What came back may be seen.
    match result {
        Ok(Response::Records(records)) => {
            for r in &records {
                let stored = before.get(r.kind(), r.name()).unwrap_or(r);
                if !allowed(Effect::Read(stored), &none) {
                    return fail(format!("showed {} '{}'", r.kind(), r.name()));
                }
            }
            tally.allowed += 1;
        }
        Ok(Response::Operations(ops)) => {
            for op in &ops {
                if !may_see(engine, &before, &who, login, op) {
                    return fail(format!("showed operation {} of {}", op.id, op.requested_by));
                }
            }
            tally.allowed += 1;
        }
        Ok(Response::Requests(requests)) => {
            for req in &requests {
                if !may_see_request(&before, &who, req) {
                    return fail(format!("showed request {} of {}", req.id, req.requester));
                }
            }
        }
        Ok(Response::Requested { .. }) => tally.runs += 1,
        _ => {}
    }
    Ok(())
}

fn import(record: Record) -> Command {
    Command::Import {
        items: vec![ImportItem {
            record,
            secrets: Default::default(),
            line: 0,
        }],
    }
}

fn decided(engine: &Engine, login: &str, op: &Operation) -> bool {
    matches!(engine.store().request(op.request), Ok(Some(r)) if r.decisions.iter().any(|d| d.approver == login))
}

fn may_see(
    engine: &Engine,
    snap: &Snapshot,
    who: &Principal<'_>,
    login: &str,
    op: &Operation,
) -> bool {
    let env = snap.environment_of_task(&op.task);
    access::authorize(
        who,
        Effect::SeeOperation {
            requested_by: &op.requested_by,
            environment: env.as_deref(),
            decided: decided(engine, login, op),
        },
        &access::NoFacts,
    )
    .is_ok()
}

fn may_see_request(snap: &Snapshot, who: &Principal<'_>, req: &ExecutionRequest) -> bool {
    let env = snap.environment_of_task(&req.task);
    let policy = match req
        .policy
        .as_deref()
        .and_then(|p| snap.get(Kind::Policy, p))
    {
        Some(Record::Policy(p)) => Some(p.clone()),
        _ => None,
    };
    access::authorize(
        who,
        Effect::SeeRequest {
            request: req,
            environment: env.as_deref(),
            policy: policy.as_ref(),
        },
        &access::NoFacts,
    )
    .is_ok()
}

/// A subscriber: its login, its event filter, its subscription.
type Subscriber = (
    &'static str,
    gatehouse::engine::EventFilter,
    gatehouse::engine::Subscription,
);

/// Judges the events waiting for each subscriber as the server would, and
/// checks each operation it would send against the model, on the store as
/// it is now.
async fn deliver(
    engine: &Engine,
    subscribers: &mut [Subscriber],
    tally: &mut Tally,
) -> Result<(), String> {
    let now = Snapshot::take(engine);
    for (login, filter, sub) in subscribers.iter_mut() {
        let Some((user, roles)) = now.principal(login) else {
            continue;
        };
        let who = Principal {
            user: &user,
            roles: roles.iter().collect(),
            groups: &[],
        };
        while let Ok(Ok(event)) =
            tokio::time::timeout(std::time::Duration::from_millis(1), sub.recv()).await
        {
            let Verdict::Send = engine.judge(filter, &event) else {
                continue;
            };
            if let Event::OperationChanged(op) = &event {
                tally.events_sent += 1;
                if !may_see(engine, &now, &who, login, op) {
                    return Err(format!(
                        "{login} was sent operation {} of {}",
                        op.id, op.requested_by
                    ));
                }
            }
        }
    }
    Ok(())
}

/// One world and one sequence of commands; `Err` names the breach.
fn run_case(world: &World, commands: &[(usize, Cmd)], tally: &mut Tally) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path(), "root", Default::default())
            .await
            .map_err(|e| e.to_string())?;
        let items = gatehouse::recordfile::parse(&seed(world), std::path::Path::new("."))
            .map_err(|e| format!("seed: {e}"))?;
        engine
            .handle("root", Command::Import { items })
            .await
            .map_err(|e| format!("seed import: {e}\n{}", seed(world)))?;
        // Every user subscribes before anything happens; what each is sent
        // is judged as the server judges it, as it happens (after each
        // command), against the store as it is then.
        let mut subscribers = Vec::new();
        // Root (who sees everything) makes sure some events are sent in
        // every world; the users are the ones whose filters are tried.
        for login in ACTORS {
            if let Ok(filter) = engine.event_filter(login) {
                subscribers.push((login, filter, engine.subscribe()));
            }
        }
        // Root runs something first, so that every world has runs and
        // events for the others to be shown or refused.
        let first = (ACTORS.len() - 1, Cmd::Request(2, false));
        for (u, cmd) in std::iter::once(&first).chain(commands) {
            check(&engine, ACTORS[*u], cmd, tally).await?;
            deliver(&engine, &mut subscribers, tally).await?;
        }
        // Let runs start and end, and deliver what they sent.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        deliver(&engine, &mut subscribers, tally).await?;
        // No operation started with other content than its request pinned.
        for op in engine
            .store()
            .operations_newest_first(None, 10_000, None, |o| o.attempts > 0)
            .unwrap()
        {
            if let Ok(Some(req)) = engine.store().request(op.request) {
                if op.task == req.task
                    && (op.template_id != req.pinned.template_id
                        || op.template_revision != req.pinned.template_revision)
                {
                    return Err(format!(
                        "operation {} ran template revision {} where request {} pinned {}",
                        op.id, op.template_revision, req.id, req.pinned.template_revision
                    ));
                }
            }
        }
        Ok(())
    })
}

#[test]
fn no_command_gives_anyone_more_than_the_authorization_model_allows() {
    let cases = std::env::var("AUTHZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let tally = std::cell::RefCell::new(Tally::default());
    let strategy = (world(), proptest::collection::vec(command(), 10..40));
    let outcome = runner.run(&strategy, |(world, commands)| {
        run_case(&world, &commands, &mut tally.borrow_mut()).map_err(TestCaseError::fail)
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
    let tally = tally.into_inner();
    // Positive controls: the worlds allowed some things, refused others,
    // ran something and sent someone events, so the checks above had
    // something to check.
    assert!(tally.allowed > 0, "nothing was allowed");
    assert!(tally.denied > 0, "nothing was denied");
    assert!(tally.runs > 0, "nothing ran");
    assert!(tally.events_sent > 0, "no subscriber was sent an operation");
}
