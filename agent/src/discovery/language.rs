//! Reads what tells a process's language (`telemetry.sdk.language`): its
//! executable, the files it maps, its environment and, when those do not tell,
//! its executable's ELF headers. The decision is `model::language::detect`.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use beyla_pipeline::model::language::{self, ProcessImage};
use beyla_pipeline::model::{Language, Pid};

/// The language of process `pid` running `exe`; what cannot be read tells nothing.
pub fn of_process(pid: Pid, exe: &Path) -> Language {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let mut mapped: Vec<&str> = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .filter(|path| path.starts_with('/'))
        .collect();
    mapped.dedup();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    let dotnet_environment = environ
        .split(|&b| b == 0)
        .any(|entry| entry.starts_with(b"DOTNET_") || entry.starts_with(b"ASPNETCORE_"));
    let exe = exe.to_string_lossy();
    let image = ProcessImage {
        exe: &exe,
        mapped: &mapped,
        dotnet_environment,
    };
    language::detect(&image, || {
        // Through /proc: the executable as the process sees it, in its own mount namespace.
        let Ok(file) = File::open(format!("/proc/{pid}/exe")) else {
            return Default::default();
        };
        language::elf_facts(|offset, len| {
            let mut buf = vec![0u8; len];
            let mut filled = 0;
            while filled < len {
                match file.read_at(&mut buf[filled..], offset + filled as u64) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(_) => return None,
                }
            }
            buf.truncate(filled);
            Some(buf)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This test binary is Rust, built by cargo: its symbols say so.
    #[test]
    fn this_process_is_rust() {
        let pid = Pid(std::process::id());
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        assert_eq!(of_process(pid, &exe), Language::Rust);
    }
}
