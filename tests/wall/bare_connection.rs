// A tenant store function called with a bare connection instead of a TenantTx.
use sqlx::Connection;

async fn read(url: &str) {
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let _ = strongroom::store::work::get_item(&mut conn, "ws", "item").await;
}

fn main() {
    let _ = read("sqlite::memory:");
}
