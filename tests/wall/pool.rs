// The pool is private to the store.
use strongroom::store::Db;

fn pool(db: &Db) {
    let _ = &db.pool;
}

fn main() {
    let _ = pool;
}
