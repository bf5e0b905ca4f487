//! Routers and parcels: in-order delivery, closure and route reduction (spec ipcz.md §6).
