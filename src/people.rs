//! People from the directory: the OS groups a login belongs to, read
//! through the system's name service (so LDAP or Active Directory groups
//! work wherever the jump host resolves them), cached briefly, and bounded
//! in time: a directory that hangs makes a lookup fail, never the server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an answer is reused.
const CACHE_FOR: Duration = Duration::from_secs(5);
/// How long a lookup may take before it is given up (and access denied).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

type Lookup = dyn Fn(&str) -> Result<Vec<String>, String> + Send + Sync;

/// The groups of logins, as the name service says.
pub struct Directory {
    lookup: Arc<Lookup>,
    cache: Mutex<HashMap<String, (Instant, Vec<String>)>>,
    timeout: Duration,
}

impl Default for Directory {
    fn default() -> Directory {
        Directory::with_lookup(Arc::new(os_groups_of), LOOKUP_TIMEOUT)
    }
}

impl Directory {
    /// A directory that asks `lookup` (the OS's in production).
    pub fn with_lookup(lookup: Arc<Lookup>, timeout: Duration) -> Directory {
        Directory {
            lookup,
            cache: Mutex::new(HashMap::new()),
            timeout,
        }
    }

    /// The OS groups `login` belongs to (primary and supplementary); none
    /// for a login the OS does not know. A lookup that fails or takes too
    /// long is an error naming it (callers deny).
    pub fn groups_of(&self, login: &str) -> Result<Vec<String>, String> {
        if let Some((at, groups)) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(login)
        {
            if at.elapsed() < CACHE_FOR {
                return Ok(groups.clone());
            }
        }
        // On a thread of its own: NSS calls block, and may hang.
        let (tx, rx) = std::sync::mpsc::channel();
        let lookup = self.lookup.clone();
        let who = login.to_string();
        std::thread::spawn(move || {
            let _ = tx.send(lookup(&who));
        });
        let groups = match rx.recv_timeout(self.timeout) {
            Ok(Ok(groups)) => groups,
            Ok(Err(e)) => {
                return Err(format!(
                    "cannot read the OS groups of '{login}' from the name service: {e}"
                ))
            }
            Err(_) => {
                return Err(format!(
                    "the name service did not say within {} s which OS groups '{login}' is in",
                    self.timeout.as_secs()
                ))
            }
        };
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(login.to_string(), (Instant::now(), groups.clone()));
        Ok(groups)
    }

    /// The members an OS group lists (its supplementary members: those
    /// whose primary group it is are not in its entry), bounded in time
    /// as every lookup.
    pub fn members_of(&self, group: &str) -> Result<Vec<String>, String> {
        let (tx, rx) = std::sync::mpsc::channel();
        let name = group.to_string();
        std::thread::spawn(move || {
            let answer = nix::unistd::Group::from_name(&name)
                .map_err(|e| e.to_string())
                .map(|g| g.map(|g| g.mem));
            let _ = tx.send(answer);
        });
        match rx.recv_timeout(self.timeout) {
            Ok(Ok(Some(mut members))) => {
                members.sort();
                Ok(members)
            }
            Ok(Ok(None)) => Err(format!("the name service knows no OS group '{group}'")),
            Ok(Err(e)) => Err(format!("cannot read OS group '{group}': {e}")),
            Err(_) => Err(format!(
                "the name service did not answer within {} s for OS group '{group}'",
                self.timeout.as_secs()
            )),
        }
    }

    /// Forgets cached answers (after a change an administrator asks to
    /// see at once).
    pub fn forget(&self) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// The name service's answer: the login's primary group and every group
/// that lists it.
fn os_groups_of(login: &str) -> Result<Vec<String>, String> {
    use nix::unistd::{getgrouplist, Group, User};
    let Some(user) = User::from_name(login).map_err(|e| e.to_string())? else {
        return Ok(Vec::new());
    };
    let name = std::ffi::CString::new(login).map_err(|e| e.to_string())?;
    let gids = getgrouplist(&name, user.gid).map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    for gid in gids {
        if let Some(g) = Group::from_gid(gid).map_err(|e| e.to_string())? {
            names.push(g.name);
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory that hangs fails the lookup within its bound, naming
    /// it; one that errs is named too; an answer is cached.
    #[test]
    fn a_hanging_or_failing_directory_is_a_bounded_named_failure() {
        let slow = Directory::with_lookup(
            Arc::new(|_: &str| {
                std::thread::sleep(Duration::from_secs(30));
                Ok(vec!["never".into()])
            }),
            Duration::from_millis(200),
        );
        let started = Instant::now();
        let err = slow.groups_of("alice").unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(err.contains("did not say within"), "{err}");

        let broken = Directory::with_lookup(
            Arc::new(|_: &str| Err("LDAP server unreachable".into())),
            Duration::from_secs(1),
        );
        let err = broken.groups_of("alice").unwrap_err();
        assert!(
            err.contains("LDAP server unreachable") && err.contains("'alice'"),
            "{err}"
        );

        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = calls.clone();
        let cached = Directory::with_lookup(
            Arc::new(move |_: &str| {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(vec!["dba".into()])
            }),
            Duration::from_secs(1),
        );
        assert_eq!(cached.groups_of("bob").unwrap(), vec!["dba".to_string()]);
        assert_eq!(cached.groups_of("bob").unwrap(), vec!["dba".to_string()]);
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    /// The real name service: root is in group root.
    #[test]
    fn the_os_says_which_groups_a_login_is_in() {
        let groups = os_groups_of("root").unwrap();
        assert!(groups.contains(&"root".to_string()), "{groups:?}");
        assert!(os_groups_of("no-such-login-gh").unwrap().is_empty());
    }
}
