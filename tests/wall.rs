//! The tenant wall holds at compile time: code outside the store's authorization module cannot
//! build a `TenantTx` (nor an `OrgScope` outside tenancy), cannot reach the pool or the raw
//! scoped `begin`, cannot call a background job's constructor, and cannot call a tenant store
//! function with a bare connection. Each file under `tests/wall/` must fail to compile with the
//! error recorded beside it (`TRYBUILD=overwrite cargo test --test wall` records them anew).

#[test]
fn code_outside_the_wall_cannot_open_a_tenant_transaction() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/wall/*.rs");
}
