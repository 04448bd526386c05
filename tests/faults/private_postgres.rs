//! A PostgreSQL cluster of the test's own, in a temporary directory on a free port, so that it
//! can be stopped and started without disturbing the shared server other tests use. Built with
//! the server's own `initdb` and `pg_ctl` (`/usr/lib/postgresql/*/bin`, or `PG_BINDIR`). PostgreSQL
//! refuses to run as root, so as root the commands run as the `postgres` user via `runuser`,
//! in a directory that user owns.

use std::path::PathBuf;
use std::process::{Command, Output};

pub struct PrivatePostgres {
    bindir: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
    /// Run the server's commands as this user (we are root).
    run_as: Option<String>,
}

fn find_bindir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BINDIR") {
        return Some(PathBuf::from(dir));
    }
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    candidates.sort();
    candidates.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .is_some_and(|s| s.trim() == "0")
}

fn ids_of(user: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, user]).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8(out.stdout).ok()?.trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

impl PrivatePostgres {
    /// Creates and starts a cluster, or says why it cannot (the caller skips with that message).
    pub fn start_new() -> Result<PrivatePostgres, String> {
        let bindir = find_bindir().ok_or(
            "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb; set PG_BINDIR)",
        )?;
        let dir = tempfile::Builder::new()
            .prefix("smecredit-pg-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let run_as = if is_root() {
            let (uid, gid) = ids_of("postgres")
                .ok_or("running as root and there is no postgres user to run PostgreSQL as")?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", dir.path().display()))?;
            Some("postgres".to_string())
        } else {
            None
        };
        let cluster = PrivatePostgres {
            bindir,
            dir,
            port: crate::free_port(),
            run_as,
        };
        let data = cluster.data_dir();
        let out = cluster.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
        )?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        cluster.start()?;
        Ok(cluster)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<Output, String> {
        let program = self.bindir.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        cmd.args(args)
            .current_dir(self.dir.path())
            .output()
            .map_err(|e| format!("running {}: {e}", program.display()))
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&self) -> Result<(), String> {
        let data = self.data_dir();
        let log = self.dir.path().join("server.log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )?;
        if !out.status.success() {
            return Err(format!(
                "pg_ctl start failed: {}{}",
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
        }
        Ok(())
    }

    /// Stops the server: `fast` disconnects every client and shuts down cleanly.
    pub fn stop(&self, mode: &str) -> Result<(), String> {
        let data = self.data_dir();
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                mode,
                "-w",
                "-t",
                "60",
                "stop",
            ],
        )?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "pg_ctl stop failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.stop("immediate");
    }
}
