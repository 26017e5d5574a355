//! Records the commit the `muster` binary is built from, for
//! `muster --version`: `MUSTER_COMMIT` from the environment (a build
//! without `.git`, such as the Docker image's, passes it), else
//! `git rev-parse --short HEAD`, else "unknown". Cargo runs this again only
//! when HEAD or the branch it names moves.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=MUSTER_COMMIT");
    let commit = std::env::var("MUSTER_COMMIT")
        .ok()
        .filter(|commit| !commit.trim().is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=MUSTER_COMMIT={}", commit.trim());
}

/// The short hash of HEAD, with the files that move when HEAD does
/// registered for a re-run; `None` without git or a repository.
fn git_commit() -> Option<String> {
    let output = Command::new("git")
        .args(["rev-parse", "--short", "HEAD", "--absolute-git-dir"])
        .output()
        .ok()
        .filter(|output| output.status.success())?;
    let text = String::from_utf8(output.stdout).ok()?;
    // One line is the hash, the other the repository's directory.
    let (commits, directories): (Vec<&str>, Vec<&str>) = text
        .lines()
        .partition(|line| line.chars().all(|c| c.is_ascii_hexdigit()));
    for git_dir in directories {
        watch(Path::new(git_dir));
    }
    commits.first().map(|commit| (*commit).to_owned())
}

/// Asks Cargo to run this again when HEAD, the branch it names, or the
/// packed references change.
fn watch(git_dir: &Path) {
    let head = git_dir.join("HEAD");
    let branch: Option<PathBuf> = std::fs::read_to_string(&head).ok().and_then(|text| {
        text.trim()
            .strip_prefix("ref: ")
            .map(|reference| git_dir.join(reference))
    });
    // A branch packed into packed-refs has no file of its own until its
    // next commit writes one: its directory is watched then.
    let branch = branch.and_then(|branch| {
        if branch.exists() {
            Some(branch)
        } else {
            branch.parent().map(Path::to_path_buf)
        }
    });
    // Only paths that exist: Cargo runs a script whose watched path is
    // missing on every build.
    let watched = [Some(head), Some(git_dir.join("packed-refs")), branch];
    for path in watched.into_iter().flatten().filter(|path| path.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
