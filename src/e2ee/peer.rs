//! placeholder
pub fn serve(_input: impl std::io::BufRead, _output: impl std::io::Write) -> std::io::Result<()> { Ok(()) }
