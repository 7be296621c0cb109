/** v2 rdma.max is the same file, with the same format, as v1. */
export { rdma } from '../v1/rdma.ts';
