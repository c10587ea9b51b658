//! The return instructions of a function, found by decoding it: on x86-64
//! instructions have variable length and a 0xC3 byte inside another
//! instruction is no return (a uprobe there would corrupt that instruction);
//! on arm64 every instruction is four bytes and RET (to x30) is one word.

use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic};

use super::Arch;

/// `ret` (x30): the only return the Go compiler emits on arm64.
const ARM64_RET: u32 = 0xd65f_03c0;
const ARM64_INSN_LEN: usize = 4;

/// Addresses of the returns of the function at `address`, whose bytes are `code`.
pub fn find(arch: Arch, address: u64, code: &[u8]) -> Result<Vec<u64>, String> {
    let found = match arch {
        Arch::X86_64 => x86_returns(address, code)?,
        Arch::Aarch64 => code
            .chunks_exact(ARM64_INSN_LEN)
            .enumerate()
            .filter(|(_, w)| u32::from_le_bytes([w[0], w[1], w[2], w[3]]) == ARM64_RET)
            .map(|(i, _)| address + (i * ARM64_INSN_LEN) as u64)
            .collect(),
    };
    if found.is_empty() {
        return Err("no return instruction".into());
    }
    Ok(found)
}

fn x86_returns(address: u64, code: &[u8]) -> Result<Vec<u64>, String> {
    let mut decoder = Decoder::with_ip(64, code, address, DecoderOptions::NONE);
    let mut insn = Instruction::default();
    let mut found = Vec::new();
    while decoder.can_decode() {
        decoder.decode_out(&mut insn);
        // Padding after the last instruction (int3) decodes; garbage does not.
        if insn.is_invalid() {
            return Err(format!("undecodable instruction at {:#x}", insn.ip()));
        }
        if insn.mnemonic() == Mnemonic::Ret {
            found.push(insn.ip());
        }
    }
    Ok(found)
}
