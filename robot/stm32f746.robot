*** Settings ***
Documentation     STM32F746G-DISCO (Cortex-M7, 320 KB SRAM, 1 MB flash): the P1 plans of three
...               small zoo models fit, equal their baselines, are bit-exact with the reference
...               and measure the same on unicorn and QEMU.
Resource          resources/msfsim.resource
Suite Setup       Require Backend    ${BACKEND}    ${PLATFORM}


*** Variables ***
${PLATFORM}     stm32f746
${BASELINES}    ${CURDIR}/baselines/stm32f746.json


*** Test Cases ***    MODEL          PLATFORM
Plan fits and matches baseline
    [Template]    Fused Plan Should Fit And Match Baseline
    lenet5-r28     ${PLATFORM}
    resnet8-r32    ${PLATFORM}
    dscnn-kws      ${PLATFORM}

Outputs are bit-exact
    [Template]    Fused Plan Output Should Be Bit Exact
    lenet5-r28     ${PLATFORM}
    resnet8-r32    ${PLATFORM}
    dscnn-kws      ${PLATFORM}

Unicorn and QEMU agree
    [Template]    Fused Plan Backends Should Agree
    lenet5-r28     ${PLATFORM}
    resnet8-r32    ${PLATFORM}
    dscnn-kws      ${PLATFORM}

Fusion saves RAM over layer-by-layer
    [Template]    Fused Plan Should Need Less RAM Than Layer By Layer
    resnet8-r32    ${PLATFORM}
    dscnn-kws      ${PLATFORM}

Measured search plan fits and is bit-exact
    [Documentation]    The plan chosen on measured costs (every candidate block compiled and run)
    ...                fits the board and computes the reference output.
    Load Model    zoo:lenet5-r28
    Search Plan    ${PLATFORM}    objective=ram    max_overhead=${MAX_OVERHEAD}    cost=measured
    ...    backend=${BACKEND}
    Measure Plan    ${BACKEND}
    Plan Should Fit Board
    Outputs Should Be Bit Exact    ${BACKEND}
