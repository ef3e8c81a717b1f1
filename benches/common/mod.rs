//! Pieces the benchmark binaries share (included with `mod common;`).

/// Multi-row INSERT text. SQLite gets anonymous `?` parameters: it looks a named parameter (`$n`)
/// up by walking a list, which makes binding 12,000 of them quadratic.
pub fn insert_sql(rows: usize, numbered: bool) -> String {
    let mut sql = String::from(
        "INSERT INTO audit_events (id, chain, seq, at, actor_id, action, target_type, target_id, ip, metadata, prev_hash, hash) VALUES ",
    );
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for col in 0..12 {
            if col > 0 {
                sql.push(',');
            }
            if numbered {
                sql.push_str(&format!("${}", r * 12 + col + 1));
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql
}
