//! One-line descriptions of frames and messages, e.g.
//! `AcceptParcel v0 sublink=1 seq=0 data=5B handles=[portal] driver_objects=[SharedBuffer(writable, 1048576 B, 2 fds)]`.

use core::fmt;

use crate::message::{Field, Message, show_list};
use crate::messages::{AcceptParcel, Body};

pub(crate) fn describe_message(m: &Message<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "{} v{}", m.body.name(), m.body.version())?;
    match &m.body {
        Body::AcceptParcel(p) => describe_parcel(p, f)?,
        other => other.fmt_fields(f)?,
    }
    if !m.driver_objects.is_empty() {
        f.write_str(" driver_objects=")?;
        let objects: Vec<_> = m.driver_objects.iter().map(|o| o.object).collect();
        show_list(f, &objects)?;
    }
    if !m.params_extension.is_empty() {
        write!(f, " newer_params={}B", m.params_extension.len())?;
    }
    Ok(())
}

fn describe_parcel(p: &AcceptParcel<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, " sublink={} seq={}", p.sublink, p.sequence_number)?;
    if p.num_subparcels != 1 || p.subparcel_index != 0 {
        write!(f, " subparcel={}/{}", p.subparcel_index, p.num_subparcels)?;
    }
    if !p.parcel_fragment.is_null() {
        write!(f, " fragment={}", p.parcel_fragment)?;
        if !p.parcel_data.is_empty() {
            write!(f, " unused_data={}B", p.parcel_data.len())?;
        }
    } else {
        write!(f, " data={}B", p.parcel_data.len())?;
    }
    if !p.handle_types.is_empty() {
        f.write_str(" handles=")?;
        Field::show(&p.handle_types, f)?;
    }
    if !p.new_routers.is_empty() {
        f.write_str(" routers=")?;
        Field::show(&p.new_routers, f)?;
    }
    if p.driver_objects.first != 0 {
        write!(f, " objects={}", p.driver_objects)?;
    }
    Ok(())
}
