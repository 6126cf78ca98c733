//! Capacity curves of a sweep: offered load against delivered latency percentiles and delivered
//! ratio, one line per value of the other swept parameters, with the knee marked.
