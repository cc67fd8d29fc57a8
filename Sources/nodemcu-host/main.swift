import NodeMCU
