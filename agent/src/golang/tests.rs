//! On real binaries built here by real Go toolchains, with and without
//! symbols: the build info, the function addresses from `.symtab` and from
//! `.gopclntab` (they must agree), the returns (checked against `go tool
//! objdump`), and the struct offsets (checked against what the program itself
//! prints through reflect). A missing toolchain fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

const READ: &str = "crypto/tls.(*Conn).Read";
const WRITE: &str = "crypto/tls.(*Conn).Write";
const MODULE: &str = "example.com/gotlsprobe";

/// Prints the offsets of offsets.toml, as this toolchain lays the structs out.
const PROGRAM: &str = r#"package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"reflect"
)

func field(t reflect.Type, name string) reflect.StructField {
	f, ok := t.FieldByName(name)
	if !ok {
		panic(name)
	}
	return f
}

func main() {
	conn := field(reflect.TypeOf(tls.Conn{}), "conn")
	inner := reflect.TypeOf(net.TCPConn{}).Field(0)
	fd := field(inner.Type, "fd")
	pfd := field(fd.Type.Elem(), "pfd")
	sysfd := field(pfd.Type, "Sysfd")
	fmt.Printf("%d %d %d %d\n", conn.Offset, inner.Offset+fd.Offset, pfd.Offset, sysfd.Offset)
	if len(os.Args) > 1 {
		c := tls.Client(nil, &tls.Config{})
		c.Write(nil)
		c.Read(nil)
	}
}
"#;

/// A Go toolchain: the system's `go`, Debian's golang-1.19-go, or a release
/// the go command fetches from the module proxy (GOTOOLCHAIN).
#[derive(Clone, Copy)]
enum Toolchain {
    System,
    Debian119,
    Release(&'static str),
}

impl Toolchain {
    fn command(self) -> Command {
        match self {
            Self::System => {
                let mut c = Command::new("go");
                c.env("GOTOOLCHAIN", "local");
                c
            }
            Self::Debian119 => {
                let mut c = Command::new("/usr/lib/go-1.19/bin/go");
                c.env("GOTOOLCHAIN", "local");
                c
            }
            Self::Release(version) => {
                let mut c = Command::new("go");
                c.env("GOTOOLCHAIN", version);
                c
            }
        }
    }
}

struct Built {
    dir: PathBuf,
}

impl Drop for Built {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Built {
    fn bin(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Builds PROGRAM as `plain` and `stripped` (-s -w) for `goarch`.
fn build(toolchain: Toolchain, label: &str, goarch: &str) -> Built {
    let dir = std::env::temp_dir().join(format!("beyla-golang-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.go"), PROGRAM).unwrap();
    std::fs::write(dir.join("go.mod"), format!("module {MODULE}\n\ngo 1.18\n")).unwrap();
    let built = Built { dir };
    for (name, flags) in [("plain", ""), ("stripped", "-s -w")] {
        let out = toolchain
            .command()
            .current_dir(&built.dir)
            .env("GOARCH", goarch)
            .env("CGO_ENABLED", "0")
            .env("GOFLAGS", "-buildvcs=false")
            .args(["build", "-o", name, &format!("-ldflags={flags}"), "."])
            .output()
            .unwrap_or_else(|e| panic!("{label}: cannot run the go command: {e}"));
        assert!(
            out.status.success(),
            "{label}: go build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    built
}

fn run_offsets(bin: &Path) -> StructOffsets {
    let out = Command::new(bin).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let n: Vec<u32> = text
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    StructOffsets {
        tls_conn_conn: n[0],
        tcp_conn_fd: n[1],
        netfd_pfd: n[2],
        poll_fd_sysfd: n[3],
    }
}

/// Addresses of the RET instructions `go tool objdump` lists for a function.
fn objdump_returns(toolchain: Toolchain, bin: &Path, function: &str) -> Vec<u64> {
    let pattern = format!("^{}$", regex::escape(function));
    let out = toolchain
        .command()
        .args(["tool", "objdump", "-s", &pattern])
        .arg(bin)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.split_whitespace().any(|w| w == "RET"))
        .map(|l| {
            let addr = l.split_whitespace().nth(1).unwrap();
            u64::from_str_radix(addr.trim_start_matches("0x"), 16).unwrap()
        })
        .collect()
}

/// File offsets to virtual addresses, through the section that holds them.
fn address_of(bin: &Path, file_offset: u64) -> u64 {
    let data = std::fs::read(bin).unwrap();
    let file = object::File::parse(&*data).unwrap();
    file.sections()
        .find_map(|s| {
            let (start, len) = s.file_range()?;
            (s.name() == Ok(".text") && (start..start + len).contains(&file_offset))
                .then(|| file_offset - start + s.address())
        })
        .unwrap()
}

/// Everything this module reads, on one toolchain's plain and stripped builds.
fn check(toolchain: Toolchain, label: &str, version: GoVersion, goarch: &str, arch: Arch) {
    let built = build(toolchain, label, goarch);
    let plain = inspect(&built.bin("plain"), &[READ, WRITE])
        .unwrap()
        .unwrap();
    let stripped = inspect(&built.bin("stripped"), &[READ, WRITE])
        .unwrap()
        .unwrap();
    for (go, symbols) in [(&plain, true), (&stripped, false)] {
        assert_eq!(go.build.version, version, "{label}");
        assert_eq!(go.build.module, MODULE, "{label}");
        assert_eq!(go.arch, arch);
        assert_eq!(go.has_symbols, symbols, "{label}");
        assert_eq!(
            go.functions.iter().map(|f| f.name).collect::<Vec<_>>(),
            [READ, WRITE],
            "{label}"
        );
    }
    // The same code at the same place, whichever table found it.
    assert_eq!(plain.functions, stripped.functions, "{label}");
    for f in &plain.functions {
        let expected = objdump_returns(toolchain, &built.bin("plain"), f.name);
        let found: Vec<u64> = f
            .returns
            .iter()
            .map(|&off| address_of(&built.bin("plain"), off))
            .collect();
        assert!(
            !expected.is_empty(),
            "{label}: objdump found no RET in {}",
            f.name
        );
        assert_eq!(found, expected, "{label}: returns of {}", f.name);
    }
    if arch == Arch::X86_64 {
        assert_eq!(
            run_offsets(&built.bin("stripped")),
            plain.offsets,
            "{label}: offsets.toml disagrees with this toolchain's layout"
        );
    }
}

fn v(major: u32, minor: u32, patch: u32) -> GoVersion {
    GoVersion {
        major,
        minor,
        patch,
    }
}

#[test]
fn go_1_26_system_toolchain() {
    check(
        Toolchain::System,
        "go1.26",
        v(1, 26, 8),
        "amd64",
        Arch::X86_64,
    );
}

#[test]
fn go_1_26_arm64() {
    check(
        Toolchain::System,
        "go1.26-arm64",
        v(1, 26, 8),
        "arm64",
        Arch::Aarch64,
    );
}

#[test]
fn go_1_27_from_the_module_proxy() {
    check(
        Toolchain::Release("go1.27.3"),
        "go1.27",
        v(1, 27, 3),
        "amd64",
        Arch::X86_64,
    );
}

#[test]
fn go_1_19_from_debian() {
    check(
        Toolchain::Debian119,
        "go1.19",
        v(1, 19, 8),
        "amd64",
        Arch::X86_64,
    );
}

#[test]
fn not_go_and_versions() {
    let exe = std::env::current_exe().unwrap();
    assert!(inspect(&exe, &[READ]).unwrap().is_none());
    assert_eq!(GoVersion::parse("go1.27rc1"), Some(v(1, 27, 0)));
    assert_eq!(GoVersion::parse("devel go1.28-abc"), Some(v(1, 28, 0)));
    assert_eq!(GoVersion::parse("go1.19.8"), Some(v(1, 19, 8)));
    assert_eq!(GoVersion::parse("gox"), None);
    assert_eq!(StructOffsets::for_version(v(1, 99, 0)).poll_fd_sysfd, 16);
}
