//! From Qdrant's wire types (qdrant-client's protobuf messages) to qdrant-edge's, and back.

use std::collections::HashMap;

use qdrant_client::qdrant as pb;
use qdrant_edge as edge;
use serde_json::Value as Json;
use tonic::Status;

use super::bad;

pub(super) fn point_id(id: Option<pb::PointId>) -> Result<edge::PointId, Status> {
    use pb::point_id::PointIdOptions;
    match id.and_then(|i| i.point_id_options) {
        Some(PointIdOptions::Num(n)) => Ok(edge::PointId::NumId(n)),
        Some(PointIdOptions::Uuid(u)) => u
            .parse()
            .map(edge::PointId::Uuid)
            .map_err(|_| bad(format!("Unable to parse UUID: {u}"))),
        None => Err(bad("a point without an id")),
    }
}

pub(super) fn wire_id(id: &edge::PointId) -> pb::PointId {
    match id {
        edge::PointId::NumId(n) => pb::PointId::from(*n),
        edge::PointId::Uuid(u) => pb::PointId::from(u.to_string()),
    }
}

pub(super) fn json(value: pb::Value) -> Json {
    use pb::value::Kind;
    match value.kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::BoolValue(b)) => Json::Bool(b),
        Some(Kind::IntegerValue(n)) => Json::from(n),
        Some(Kind::DoubleValue(x)) => Json::from(x),
        Some(Kind::StringValue(s)) => Json::String(s),
        Some(Kind::ListValue(l)) => Json::Array(l.values.into_iter().map(json).collect()),
        Some(Kind::StructValue(s)) => {
            Json::Object(s.fields.into_iter().map(|(k, v)| (k, json(v))).collect())
        }
    }
}

pub(super) fn wire_value(value: Json) -> pb::Value {
    use pb::value::Kind;
    let kind = match value {
        Json::Null => Kind::NullValue(0),
        Json::Bool(b) => Kind::BoolValue(b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Kind::IntegerValue(i),
            None => Kind::DoubleValue(n.as_f64().unwrap_or(0.0)),
        },
        Json::String(s) => Kind::StringValue(s),
        Json::Array(a) => Kind::ListValue(pb::ListValue {
            values: a.into_iter().map(wire_value).collect(),
        }),
        Json::Object(o) => Kind::StructValue(pb::Struct {
            fields: o.into_iter().map(|(k, v)| (k, wire_value(v))).collect(),
        }),
    };
    pb::Value { kind: Some(kind) }
}

pub(super) fn wire_payload(payload: Option<edge::Payload>) -> HashMap<String, pb::Value> {
    payload
        .map(|p| p.0.into_iter().map(|(k, v)| (k, wire_value(v))).collect())
        .unwrap_or_default()
}

pub(super) fn key(key: &str) -> Result<edge::JsonPath, Status> {
    key.parse()
        .map_err(|_| bad(format!("bad payload key {key:?}")))
}

pub(super) fn condition(c: pb::Condition) -> Result<edge::Condition, Status> {
    use pb::condition::ConditionOneOf;
    use pb::r#match::MatchValue;
    match c.condition_one_of {
        Some(ConditionOneOf::Field(f)) => {
            let value = f
                .r#match
                .and_then(|m| m.match_value)
                .ok_or_else(|| Status::unimplemented("only match conditions are served"))?;
            let matcher = match value {
                MatchValue::Keyword(k) => edge::Match::from(k),
                MatchValue::Keywords(k) => edge::Match::from(k.strings),
                MatchValue::Integer(i) => edge::Match::from(i),
                MatchValue::Integers(i) => edge::Match::from(i.integers),
                MatchValue::Boolean(b) => edge::Match::from(b),
                _ => return Err(Status::unimplemented("this match is not served")),
            };
            Ok(edge::Condition::Field(edge::FieldCondition::new_match(
                key(&f.key)?,
                matcher,
            )))
        }
        Some(ConditionOneOf::Filter(f)) => Ok(edge::Condition::Filter(filter(f)?)),
        _ => Err(Status::unimplemented("this condition is not served")),
    }
}

pub(super) fn conditions(list: Vec<pb::Condition>) -> Result<Option<Vec<edge::Condition>>, Status> {
    if list.is_empty() {
        return Ok(None);
    }
    list.into_iter()
        .map(condition)
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

pub(super) fn filter(f: pb::Filter) -> Result<edge::Filter, Status> {
    if f.min_should.is_some() {
        return Err(Status::unimplemented("min_should is not served"));
    }
    Ok(edge::Filter {
        must: conditions(f.must)?,
        should: conditions(f.should)?,
        must_not: conditions(f.must_not)?,
        min_should: None,
    })
}

pub(super) fn optional_filter(f: Option<pb::Filter>) -> Result<Option<edge::Filter>, Status> {
    f.map(filter).transpose()
}

pub(super) fn with_payload(
    selector: Option<pb::WithPayloadSelector>,
    default: bool,
) -> Result<edge::WithPayloadInterface, Status> {
    use pb::with_payload_selector::SelectorOptions;
    Ok(match selector.and_then(|s| s.selector_options) {
        None => edge::WithPayloadInterface::Bool(default),
        Some(SelectorOptions::Enable(b)) => edge::WithPayloadInterface::Bool(b),
        Some(SelectorOptions::Include(i)) => edge::WithPayloadInterface::Fields(
            i.fields.iter().map(|f| key(f)).collect::<Result<_, _>>()?,
        ),
        Some(SelectorOptions::Exclude(_)) => {
            return Err(Status::unimplemented("payload exclusion is not served"));
        }
    })
}

/// Which stored vectors a reply carries (`with_vectors`: all, none or the named ones).
pub(super) fn with_vector(selector: Option<pb::WithVectorsSelector>) -> edge::WithVector {
    use pb::with_vectors_selector::SelectorOptions;
    match selector.and_then(|s| s.selector_options) {
        None => edge::WithVector::Bool(false),
        Some(SelectorOptions::Enable(b)) => edge::WithVector::Bool(b),
        Some(SelectorOptions::Include(names)) => edge::WithVector::Selector(names.names),
    }
}

/// A point's stored vectors on the wire, as a reply carries them.
pub(super) fn wire_vectors(
    vectors: Option<edge::VectorStructInternal>,
) -> Option<pb::VectorsOutput> {
    use pb::vectors_output::VectorsOptions;
    let output = |v: edge::VectorInternal| match v {
        edge::VectorInternal::Dense(data) => Some(pb::VectorOutput {
            vector: Some(pb::vector_output::Vector::Dense(pb::DenseVector { data })),
            ..Default::default()
        }),
        _ => None,
    };
    Some(pb::VectorsOutput {
        vectors_options: Some(match vectors? {
            edge::VectorStructInternal::Single(data) => {
                VectorsOptions::Vector(output(edge::VectorInternal::Dense(data))?)
            }
            edge::VectorStructInternal::Named(named) => {
                VectorsOptions::Vectors(pb::NamedVectorsOutput {
                    vectors: named
                        .into_iter()
                        .filter_map(|(name, v)| Some((name, output(v)?)))
                        .collect(),
                })
            }
            edge::VectorStructInternal::MultiDense(_) => return None,
        }),
    })
}

pub(super) fn sparse(indices: Vec<u32>, values: Vec<f32>) -> Result<edge::SparseVector, Status> {
    edge::SparseVector::new(indices, values).map_err(bad)
}

/// A stored vector from the wire (the `vector` one-of, or the older `data` and `indices`).
pub(super) fn vector(v: pb::Vector) -> Result<edge::VectorPersisted, Status> {
    use pb::vector::Vector as V;
    #[allow(deprecated)]
    match v.vector {
        Some(V::Dense(d)) => Ok(edge::VectorPersisted::Dense(d.data)),
        Some(V::Sparse(s)) => Ok(edge::VectorPersisted::Sparse(sparse(s.indices, s.values)?)),
        Some(_) => Err(Status::unimplemented(
            "only dense and sparse vectors are served",
        )),
        None => match v.indices {
            Some(i) => Ok(edge::VectorPersisted::Sparse(sparse(i.data, v.data)?)),
            None => Ok(edge::VectorPersisted::Dense(v.data)),
        },
    }
}

pub(super) fn point(p: pb::PointStruct) -> Result<edge::PointStructPersisted, Status> {
    use pb::vectors::VectorsOptions;
    let vector = match p.vectors.and_then(|v| v.vectors_options) {
        Some(VectorsOptions::Vectors(named)) => edge::VectorStructPersisted::Named(
            named
                .vectors
                .into_iter()
                .map(|(name, v)| Ok((name, vector(v)?)))
                .collect::<Result<_, Status>>()?,
        ),
        Some(VectorsOptions::Vector(v)) => match vector(v)? {
            edge::VectorPersisted::Dense(d) => edge::VectorStructPersisted::Single(d),
            _ => return Err(bad("an unnamed vector must be dense")),
        },
        None => edge::VectorStructPersisted::Named(HashMap::new()),
    };
    Ok(edge::PointStructPersisted {
        id: point_id(p.id)?,
        vector,
        payload: Some(edge::Payload::from(
            p.payload
                .into_iter()
                .map(|(k, v)| (k, json(v)))
                .collect::<serde_json::Map<_, _>>(),
        )),
    })
}

pub(super) fn done() -> pb::PointsOperationResponse {
    pb::PointsOperationResponse {
        result: Some(pb::UpdateResult {
            operation_id: Some(0),
            status: pb::UpdateStatus::Completed as i32,
        }),
        time: 0.0,
        usage: None,
    }
}

/// An edge shard's configuration from a collection's creation request.
pub(super) fn edge_config(c: &pb::CreateCollection) -> Result<edge::EdgeConfig, Status> {
    use pb::vectors_config::Config;
    let mut builder = edge::EdgeConfigBuilder::new();
    let dense: Vec<(String, pb::VectorParams)> =
        match c.vectors_config.clone().and_then(|v| v.config) {
            Some(Config::Params(p)) => vec![(String::new(), p)],
            Some(Config::ParamsMap(m)) => m.map.into_iter().collect(),
            None => Vec::new(),
        };
    for (name, params) in dense {
        let distance = match pb::Distance::try_from(params.distance) {
            Ok(pb::Distance::Cosine) => edge::Distance::Cosine,
            Ok(pb::Distance::Dot) => edge::Distance::Dot,
            Ok(pb::Distance::Euclid) => edge::Distance::Euclid,
            Ok(pb::Distance::Manhattan) => edge::Distance::Manhattan,
            _ => return Err(bad("unknown distance")),
        };
        if params.size == 0 {
            return Err(bad("a vector's size must be positive"));
        }
        let datatype = match params.datatype.map(pb::Datatype::try_from) {
            None | Some(Ok(pb::Datatype::Default | pb::Datatype::Float32)) => {
                edge::VectorStorageDatatype::Float32
            }
            Some(Ok(pb::Datatype::Float16)) => edge::VectorStorageDatatype::Float16,
            Some(Ok(pb::Datatype::Uint8)) => edge::VectorStorageDatatype::Uint8,
            _ => return Err(bad("unknown datatype")),
        };
        builder = builder.vector(
            name,
            edge::EdgeVectorParamsBuilder::new(params.size as usize, distance)
                .datatype(datatype)
                .build(),
        );
    }
    for (name, params) in c
        .sparse_vectors_config
        .clone()
        .map(|s| s.map)
        .unwrap_or_default()
    {
        let modifier = match params.modifier.map(pb::Modifier::try_from) {
            Some(Ok(pb::Modifier::Idf)) => edge::Modifier::Idf,
            _ => edge::Modifier::None,
        };
        builder = builder.sparse_vector(
            name,
            edge::EdgeSparseVectorParamsBuilder::new()
                .modifier(modifier)
                .build(),
        );
    }
    Ok(builder.build())
}
