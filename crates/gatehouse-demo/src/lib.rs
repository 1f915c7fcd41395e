//! gatehouse-demo
