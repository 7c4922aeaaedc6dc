//! A worker's process as another process on the same machine can check it:
//! `boot id/pid namespace/pid/start time`, stored with every lease it takes. A worker
//! that finds a holder of leases dead by this name takes its sources at once (a process
//! restarted after a kill, say) rather than waiting for the leases to run out. Only a
//! process of the same boot and pid namespace is ever judged: a holder elsewhere (another
//! machine, another container) is never presumed dead here, its leases run out.
//!
//! This name rather than an id stable across restarts (host name and data folder):
//! `bantin crawl` beside a running daemon shares both, yet is a process of its own that
//! must wait for the daemon's leases, and two machines can share a host name.

/// This process's name, where the system tells it (Linux).
pub(super) fn this_process() -> Option<String> {
    imp::this_process()
}

/// Whether `process` (a name [`this_process`] gave some worker) is known dead: it is of
/// this machine's boot and this pid namespace, and no process with its pid and start
/// time runs (one that ended and was not yet reaped counts as dead).
pub(super) fn is_dead(process: &str) -> bool {
    imp::is_dead(process)
}

#[cfg(target_os = "linux")]
mod imp {
    use procfs::process::Process;

    /// The boot and pid namespace of this process: the part of a name that says where
    /// its pid means something.
    fn place() -> Option<String> {
        let boot = procfs::sys::kernel::random::boot_id().ok()?;
        let namespaces = Process::myself().ok()?.namespaces().ok()?;
        let pid_ns = namespaces.0.get(std::ffi::OsStr::new("pid"))?.identifier;
        Some(format!("{}/{pid_ns}", boot.trim()))
    }

    pub(super) fn this_process() -> Option<String> {
        let me = Process::myself().ok()?;
        let started = me.stat().ok()?.starttime;
        Some(format!("{}/{}/{started}", place()?, me.pid))
    }

    pub(super) fn is_dead(process: &str) -> bool {
        // `place/pid/start`, read from the right: the place holds a slash itself.
        let mut parts = process.rsplitn(3, '/');
        let (Some(started), Some(pid), Some(place_of)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let (Ok(started), Ok(pid)) = (started.parse::<u64>(), pid.parse::<i32>()) else {
            return false;
        };
        if place().as_deref() != Some(place_of) {
            return false;
        }
        match Process::new(pid).and_then(|p| p.stat()) {
            Ok(stat) => stat.starttime != started || matches!(stat.state, 'Z' | 'X'),
            // No such process (a stat that fails for another reason proves nothing).
            Err(procfs::ProcError::NotFound(_)) => true,
            Err(_) => false,
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub(super) fn this_process() -> Option<String> {
        None
    }

    pub(super) fn is_dead(_process: &str) -> bool {
        false
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_alive_and_an_ended_one_dead() {
        let me = this_process().expect("Linux names this process");
        assert!(!is_dead(&me), "{me}");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let (place, _) = me.rsplit_once('/').unwrap();
        let (place, _) = place.rsplit_once('/').unwrap();
        assert!(is_dead(&format!("{place}/{pid}/1")), "ended and reaped");
        let (_, started) = me.rsplit_once('/').unwrap();
        let me_restarted = format!(
            "{place}/{}/{}",
            std::process::id(),
            started.parse::<u64>().unwrap() + 1
        );
        assert!(
            is_dead(&me_restarted),
            "same pid, another start: pid reused"
        );
        assert!(
            !is_dead(&format!("other-boot/1/{pid}/1")),
            "another machine is never judged"
        );
        assert!(!is_dead("garbage"));
    }
}
