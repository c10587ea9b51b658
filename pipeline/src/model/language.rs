//! The language a traced process is written in (`telemetry.sdk.language`),
//! told from what the process maps and from its executable's ELF headers, as
//! Beyla tells it. Pure functions: discovery reads the files and passes their
//! contents (or a reader) in.

/// A process's language, by `telemetry.sdk.language` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Language {
    Go,
    Java,
    Python,
    Nodejs,
    Ruby,
    Php,
    Dotnet,
    Rust,
    Cpp,
    /// None of the above could be told (Beyla's `generic`).
    #[default]
    Generic,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Go => "go",
            Language::Java => "java",
            Language::Python => "python",
            Language::Nodejs => "nodejs",
            Language::Ruby => "ruby",
            Language::Php => "php",
            Language::Dotnet => "dotnet",
            Language::Rust => "rust",
            Language::Cpp => "cpp",
            Language::Generic => "generic",
        }
    }
}

/// What the executable's ELF headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ElfFacts {
    /// `.gopclntab` or `.go.buildinfo`: built by the Go toolchain (kept when stripped).
    pub go_sections: bool,
    /// Built by rustc: its `.comment` names it, or a symbol has `rust_panic`
    /// in its name (Rust's standard library).
    pub rust_symbols: bool,
    /// Symbols of a JVM linked in (`JVM_*`, GraalVM's `graal_*` native images).
    pub jvm_symbols: bool,
}

/// What discovery read of one process.
#[derive(Debug, Clone, Copy)]
pub struct ProcessImage<'a> {
    /// The executable's path, as `/proc/<pid>/exe` links it.
    pub exe: &'a str,
    /// The paths of the files the process maps (`/proc/<pid>/maps`), executable
    /// included (at exec time, only it and the dynamic loader).
    pub mapped: &'a [&'a str],
    /// The environment names the .NET runtime (a `DOTNET_` or `ASPNETCORE_` variable).
    pub dotnet_environment: bool,
}

/// The language of a process: a runtime it runs (its executable or a library
/// it maps: .NET, a JVM, node, ruby, python) first, then the executable's ELF
/// (Go, Rust, a JVM native image; `elf` is read only then), then PHP by its
/// executable's name, .NET by its environment, C++ by its standard library;
/// else [`Language::Generic`].
pub fn detect(image: &ProcessImage<'_>, elf: impl FnOnce() -> ElfFacts) -> Language {
    let runtime = std::iter::once(image.exe)
        .chain(image.mapped.iter().copied())
        .find_map(runtime_of);
    if let Some(language) = runtime {
        return language;
    }
    let elf = elf();
    if elf.go_sections {
        return Language::Go;
    }
    if elf.rust_symbols {
        return Language::Rust;
    }
    if elf.jvm_symbols {
        return Language::Java;
    }
    if base_name(image.exe).contains("php") {
        return Language::Php;
    }
    if image.dotnet_environment {
        return Language::Dotnet;
    }
    if image.mapped.iter().any(|path| {
        let name = base_name(path);
        name.starts_with("libstdc++.so") || name.starts_with("libc++.so")
    }) {
        return Language::Cpp;
    }
    Language::Generic
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// `name` is `prefix` followed by nothing but digits and dots (`python3.11`).
fn versioned(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
}

/// The runtime a mapped file belongs to, if it is one.
fn runtime_of(path: &str) -> Option<Language> {
    let name = base_name(path);
    if name.starts_with("libcoreclr.so") || name == "dotnet" {
        Some(Language::Dotnet)
    } else if name.starts_with("libjvm.so") || name == "java" {
        Some(Language::Java)
    } else if name == "node" || name.starts_with("libnode.so") {
        Some(Language::Nodejs)
    } else if versioned(name, "ruby") || name.starts_with("libruby") {
        Some(Language::Ruby)
    } else if versioned(name, "python") || name.starts_with("libpython") {
        Some(Language::Python)
    } else {
        None
    }
}

/// Most bytes of one symbol string table that are searched.
pub const MAX_STRING_TABLE: usize = 8 * 1024 * 1024;
/// Most bytes of the `.comment` section read.
const MAX_COMMENT: usize = 64 * 1024;
/// Most section headers read.
const MAX_SECTIONS: usize = 4096;
/// `Elf64_Shdr`.
const SECTION_HEADER_LEN: usize = 64;
const SHT_SYMTAB: u32 = 2;
const SHT_DYNSYM: u32 = 11;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

struct Section {
    name: u32,
    kind: u32,
    offset: u64,
    size: u64,
    link: u32,
}

/// Reads an executable's section names and symbol string tables through
/// `read_at(offset, len)` (which returns fewer bytes only at the file's end).
/// 64-bit little-endian ELF only (x86_64, arm64); anything else tells nothing.
pub fn elf_facts(mut read_at: impl FnMut(u64, usize) -> Option<Vec<u8>>) -> ElfFacts {
    let mut facts = ElfFacts::default();
    let Some(header) = read_at(0, 64) else {
        return facts;
    };
    if header.get(..4) != Some(b"\x7fELF") || header.get(4) != Some(&2) || header.get(5) != Some(&1)
    {
        return facts;
    }
    let (Some(shoff), Some(shentsize), Some(shnum), Some(shstrndx)) = (
        u64_at(&header, 0x28),
        u16_at(&header, 0x3a),
        u16_at(&header, 0x3c),
        u16_at(&header, 0x3e),
    ) else {
        return facts;
    };
    let count = usize::from(shnum).min(MAX_SECTIONS);
    if usize::from(shentsize) != SECTION_HEADER_LEN || count == 0 {
        return facts;
    }
    let Some(table) = read_at(shoff, count * SECTION_HEADER_LEN) else {
        return facts;
    };
    let sections: Vec<Section> = table
        .chunks_exact(SECTION_HEADER_LEN)
        .filter_map(|h| {
            Some(Section {
                name: u32_at(h, 0)?,
                kind: u32_at(h, 4)?,
                offset: u64_at(h, 0x18)?,
                size: u64_at(h, 0x20)?,
                link: u32_at(h, 0x28)?,
            })
        })
        .collect();
    let table_of = |s: &Section, read_at: &mut dyn FnMut(u64, usize) -> Option<Vec<u8>>| {
        let len = usize::try_from(s.size).unwrap_or(usize::MAX);
        read_at(s.offset, len.min(MAX_STRING_TABLE))
    };
    let names_table = sections
        .get(usize::from(shstrndx))
        .and_then(|s| table_of(s, &mut read_at));
    if let Some(names) = &names_table {
        facts.go_sections = sections.iter().any(|s| {
            let name = names.get(s.name as usize..).unwrap_or_default();
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            name == b".gopclntab" || name == b".go.buildinfo"
        });
    }
    if facts.go_sections {
        return facts;
    }
    let named = |wanted: &[u8]| {
        sections.iter().find(|s| {
            names_table
                .as_deref()
                .and_then(|names| names.get(s.name as usize..))
                .is_some_and(|name| name.starts_with(wanted) && name.get(wanted.len()) == Some(&0))
        })
    };
    // Compilers write their name and version in `.comment`; strip keeps it.
    if let Some(comment) = named(b".comment").and_then(|s| {
        let len = usize::try_from(s.size).unwrap_or(usize::MAX);
        read_at(s.offset, len.min(MAX_COMMENT))
    }) {
        facts.rust_symbols = memchr::memmem::find(&comment, b"rustc version").is_some();
    }
    for symbols in sections
        .iter()
        .filter(|s| s.kind == SHT_SYMTAB || s.kind == SHT_DYNSYM)
    {
        let Some(strings) = sections
            .get(symbols.link as usize)
            .and_then(|s| table_of(s, &mut read_at))
        else {
            continue;
        };
        // Names are mangled (`..._7___rustc10rust_panic`): searched within.
        facts.rust_symbols |= memchr::memmem::find(&strings, b"rust_panic").is_some();
        facts.jvm_symbols |= memchr::memmem::find(&strings, b"\0JVM_").is_some()
            || memchr::memmem::find(&strings, b"\0graal_").is_some();
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image<'a>(exe: &'a str, mapped: &'a [&'a str]) -> ProcessImage<'a> {
        ProcessImage {
            exe,
            mapped,
            dotnet_environment: false,
        }
    }

    fn native(image: &ProcessImage<'_>) -> Language {
        detect(image, ElfFacts::default)
    }

    #[test]
    fn runtimes_are_told_by_what_the_process_maps() {
        let cases: [(&str, &[&str], Language); 8] = [
            (
                "/usr/bin/python3.11",
                &["/usr/bin/python3.11", "/usr/lib/x86_64-linux-gnu/libc.so.6"],
                Language::Python,
            ),
            (
                "/usr/lib/jvm/java-17/bin/java",
                &[
                    "/usr/lib/jvm/java-17/bin/java",
                    "/usr/lib/jvm/java-17/lib/server/libjvm.so",
                ],
                Language::Java,
            ),
            ("/usr/bin/node", &["/usr/bin/node"], Language::Nodejs),
            // At exec time the JVM is not mapped yet: the launcher's name tells.
            (
                "/usr/lib/jvm/java-17-openjdk-amd64/bin/java",
                &["/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"],
                Language::Java,
            ),
            (
                "/usr/bin/ruby3.1",
                &["/usr/bin/ruby3.1", "/usr/lib/libruby-3.1.so.3.1"],
                Language::Ruby,
            ),
            (
                "/usr/share/dotnet/dotnet",
                &["/usr/share/dotnet/shared/Microsoft.NETCore.App/8.0.0/libcoreclr.so"],
                Language::Dotnet,
            ),
            ("/usr/bin/php8.2", &["/usr/bin/php8.2"], Language::Php),
            (
                "/usr/sbin/envoy",
                &[
                    "/usr/sbin/envoy",
                    "/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30",
                ],
                Language::Cpp,
            ),
        ];
        for (exe, mapped, language) in cases {
            let read = || panic!("{exe}: the ELF is not read when a runtime tells");
            let elf_needed = language == Language::Php || language == Language::Cpp;
            let got = if elf_needed {
                native(&image(exe, mapped))
            } else {
                detect(&image(exe, mapped), read)
            };
            assert_eq!(got, language, "{exe}");
        }
        // A name that only begins like an interpreter's is not one.
        assert_eq!(
            native(&image("/opt/pythonista", &["/opt/pythonista"])),
            Language::Generic
        );
    }

    #[test]
    fn elf_facts_and_environment_decide_for_native_executables() {
        let server = image("/app/server", &["/app/server"]);
        let with = |facts: ElfFacts| detect(&server, || facts);
        let go = ElfFacts {
            go_sections: true,
            ..ElfFacts::default()
        };
        assert_eq!(with(go), Language::Go);
        let rust = ElfFacts {
            rust_symbols: true,
            ..ElfFacts::default()
        };
        assert_eq!(with(rust), Language::Rust);
        let native_java = ElfFacts {
            jvm_symbols: true,
            ..ElfFacts::default()
        };
        assert_eq!(with(native_java), Language::Java);
        let mut dotnet = image("/app/Api", &["/app/Api"]);
        dotnet.dotnet_environment = true;
        assert_eq!(native(&dotnet), Language::Dotnet);
        assert_eq!(Language::Nodejs.as_str(), "nodejs");
    }

    /// A minimal ELF64 file: the header, a section name table, and the given sections.
    fn elf(sections: &[(&str, u32, &[u8])]) -> Vec<u8> {
        let mut names = vec![0u8];
        let mut name_at = Vec::new();
        for (name, _, _) in sections {
            name_at.push(names.len() as u32);
            names.extend_from_slice(name.as_bytes());
            names.push(0);
        }
        let shstrtab_name = names.len() as u32;
        names.extend_from_slice(b".shstrtab\0");
        let mut file = vec![0u8; 64];
        file[..6].copy_from_slice(b"\x7fELF\x02\x01");
        let mut bodies = Vec::new();
        for (_, _, body) in sections {
            bodies.push((file.len() as u64, body.len() as u64));
            file.extend_from_slice(body);
        }
        let names_at = file.len() as u64;
        file.extend_from_slice(&names);
        let shoff = file.len() as u64;
        // Section 0 is the null section.
        file.extend_from_slice(&[0u8; 64]);
        let mut header = |name: u32, kind: u32, (offset, size): (u64, u64), link: u32| {
            let mut h = [0u8; 64];
            h[0..4].copy_from_slice(&name.to_le_bytes());
            h[4..8].copy_from_slice(&kind.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&offset.to_le_bytes());
            h[0x20..0x28].copy_from_slice(&size.to_le_bytes());
            h[0x28..0x2c].copy_from_slice(&link.to_le_bytes());
            file.extend_from_slice(&h);
        };
        for (i, (_, kind, _)) in sections.iter().enumerate() {
            // A symbol table's strings are the section after it.
            header(name_at[i], *kind, bodies[i], i as u32 + 2);
        }
        let count = sections.len() as u16 + 2;
        header(shstrtab_name, 3, (names_at, names.len() as u64), 0);
        file[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        file[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        file[0x3c..0x3e].copy_from_slice(&count.to_le_bytes());
        file[0x3e..0x40].copy_from_slice(&(count - 1).to_le_bytes());
        file
    }

    fn facts_of(file: &[u8]) -> ElfFacts {
        elf_facts(|offset, len| {
            let start = usize::try_from(offset).ok()?;
            let rest = file.get(start..)?;
            Some(rest[..len.min(rest.len())].to_vec())
        })
    }

    #[test]
    fn elf_sections_and_symbols_are_read() {
        let go = elf(&[(".text", 1, b"\x90"), (".gopclntab", 1, b"\x00")]);
        assert_eq!(
            facts_of(&go),
            ElfFacts {
                go_sections: true,
                ..ElfFacts::default()
            }
        );
        let rust = elf(&[
            (".symtab", SHT_SYMTAB, b""),
            (
                ".strtab",
                3,
                b"\0main\0_RNvCsfLfy6EI15iL_7___rustc10rust_panic\0",
            ),
        ]);
        assert!(facts_of(&rust).rust_symbols);
        // Stripped: the compiler's own words in `.comment` still tell.
        let stripped = elf(&[(
            ".comment",
            1,
            b"GCC: (Debian 12.2.0)\0rustc version 1.95.0\0",
        )]);
        assert!(facts_of(&stripped).rust_symbols);
        let c = elf(&[(".comment", 1, b"GCC: (Debian 12.2.0)\0")]);
        assert_eq!(facts_of(&c), ElfFacts::default());
        let jvm = elf(&[
            (".dynsym", SHT_DYNSYM, b""),
            (".dynstr", 3, b"\0JVM_GetArrayLength\0"),
        ]);
        assert!(facts_of(&jvm).jvm_symbols);
        assert_eq!(facts_of(b"#!/bin/sh\n"), ElfFacts::default());
        // Cut anywhere, it tells nothing and never panics.
        for cut in 0..go.len() {
            let _ = facts_of(&go[..cut]);
        }
    }
}
