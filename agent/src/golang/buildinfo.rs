//! The `.go.buildinfo` section: the Go version that built the binary and its
//! main module. Since Go 1.18 its strings are inline: a 32-byte header (magic,
//! pointer size, flags), then the version and the module info, each preceded
//! by its length as an unsigned varint.

use std::fmt;

const MAGIC: &[u8] = b"\xff Go buildinf:";
const HEADER_LEN: usize = 32;
/// Offset of the flags byte; bit 1: strings inline (Go 1.18 and later).
const FLAGS_AT: usize = 15;
const FLAG_INLINE: u8 = 2;
/// The module info is framed by 16 bytes of sentinel on each side.
const MODINFO_SENTINEL: usize = 16;

/// A Go release, `go1.26.8` is 1.26.8; pre-releases (`go1.27rc1`) have patch 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl GoVersion {
    /// `go1.26.8`, `1.18`, `go1.27rc1`, `devel go1.27-abcdef ...`.
    pub fn parse(text: &str) -> Option<Self> {
        let start = text.find("go1.").map_or(0, |at| at + 2);
        let mut parts = text[start..].split('.').map(|p| {
            let digits = p.bytes().take_while(u8::is_ascii_digit).count();
            p[..digits].parse::<u32>().ok()
        });
        Some(Self {
            major: parts.next()??,
            minor: parts.next()??,
            patch: parts.next().flatten().unwrap_or(0),
        })
    }
}

impl fmt::Display for GoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "go{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    pub version: GoVersion,
    /// The main module's path (`example.com/app`), empty when the build had none.
    pub module: String,
}

/// Reads the section's bytes. A build info of Go 1.17 or older (pointers,
/// not inline strings) answers version 1.0 so that the caller refuses it.
pub fn parse(section: &[u8]) -> Result<BuildInfo, String> {
    if section.len() < HEADER_LEN || !section.starts_with(MAGIC) {
        return Err("no build info header".into());
    }
    if section[FLAGS_AT] & FLAG_INLINE == 0 {
        return Ok(BuildInfo {
            version: GoVersion {
                major: 1,
                minor: 0,
                patch: 0,
            },
            module: String::new(),
        });
    }
    let mut rest = &section[HEADER_LEN..];
    let version = take_string(&mut rest).ok_or("version string cut short")?;
    let modinfo = take_string(&mut rest).ok_or("module info cut short")?;
    let version = std::str::from_utf8(version)
        .ok()
        .and_then(GoVersion::parse)
        .ok_or_else(|| {
            format!(
                "unreadable Go version {:?}",
                String::from_utf8_lossy(version)
            )
        })?;
    Ok(BuildInfo {
        version,
        module: module_path(modinfo),
    })
}

/// An unsigned-varint length, then that many bytes.
fn take_string<'a>(data: &mut &'a [u8]) -> Option<&'a [u8]> {
    let mut len: u64 = 0;
    for (i, byte) in data.iter().enumerate().take(10) {
        len |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let start = i + 1;
            let end = start.checked_add(usize::try_from(len).ok()?)?;
            let s = data.get(start..end)?;
            *data = &data[end..];
            return Some(s);
        }
    }
    None
}

/// The `mod` line's path, else the `path` line's (the main package).
fn module_path(modinfo: &[u8]) -> String {
    let text = if modinfo.len() > 2 * MODINFO_SENTINEL {
        &modinfo[MODINFO_SENTINEL..modinfo.len() - MODINFO_SENTINEL]
    } else {
        modinfo
    };
    let text = String::from_utf8_lossy(text);
    let field = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('\t'))
            .and_then(|rest| rest.split('\t').next())
            .map(str::to_owned)
    };
    field("mod").or_else(|| field("path")).unwrap_or_default()
}
