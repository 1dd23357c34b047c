//! `hearth-fake-llm [ADDR]`: runs the scripted upstream (default 127.0.0.1:0) and prints its URL,
//! for benchmarks and for trying the chat UI without a real provider.

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let addr: std::net::SocketAddr = addr.parse().map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("address: {e}"))
    })?;
    let fake = hearth_fake_llm::FakeLlm::start_on(addr).await?;
    println!(
        "fake LLM upstream: OpenAI at {} , Anthropic at {}",
        fake.openai_url(),
        fake.anthropic_url()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
