*** Settings ***
Documentation     The same checks on Renode (`BACKEND:renode`, the default of this suite), against
...               unicorn. Renode is optional: without it every test is skipped with the reason.
Resource          resources/msfsim.resource
Suite Setup       Require Backend    ${BACKEND}    ${PLATFORM}


*** Variables ***
${BACKEND}          renode
${OTHER_BACKEND}    unicorn
${PLATFORM}         stm32f746


*** Test Cases ***    MODEL          PLATFORM
Outputs are bit-exact on Renode
    [Template]    Fused Plan Output Should Be Bit Exact
    lenet5-r28     ${PLATFORM}
    dscnn-kws      ${PLATFORM}

Renode and unicorn agree
    [Template]    Fused Plan Backends Should Agree
    lenet5-r28     ${PLATFORM}
    dscnn-kws      ${PLATFORM}

Plan fits the board on Renode
    Load Model    zoo:dscnn-kws
    Search Plan    ${PLATFORM}    objective=ram    max_overhead=${MAX_OVERHEAD}    cost=analytic
    Measure Plan    ${BACKEND}
    Plan Should Fit Board
