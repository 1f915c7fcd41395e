//! gatehouse-mcp
