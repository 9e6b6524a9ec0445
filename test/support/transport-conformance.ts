export { describeTransportConformance, type ClusterFactory, type ConformanceOptions } from 'tonijs/testing';
